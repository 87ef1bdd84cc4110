import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from tvae_lib.baselines import mlp_vae_metrics, pca_metrics, train_mlp_vae


def _data(n=60, seed=0):
    """Two classes of noisy sequences that differ in frequency: (N, 12, 2), labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    t = np.linspace(0, 1, 12)
    phase = rng.uniform(0, 1, n)[:, None]
    x = np.stack([np.sin((3 + 3 * labels[:, None]) * t + phase), np.cos(2 * t + phase)], -1)
    return torch.tensor(x + 0.05 * rng.standard_normal(x.shape), dtype=torch.float32), labels


def test_pca_metrics_match_scikit_learn_and_separate_the_classes():
    x, labels = _data()
    x_test, labels_test = _data(seed=1)
    result = pca_metrics(x, x_test, 2, labels_test, labels)
    pca = PCA(2).fit(x.reshape(60, -1).numpy())
    flat = x_test.reshape(60, -1).numpy()
    expected = np.mean((pca.inverse_transform(pca.transform(flat)) - flat) ** 2)
    assert result["mse"] == pytest.approx(expected, rel=1e-5)
    assert result["knn_accuracy"] > 0.9
    assert pca_metrics(x, x_test, 24)["mse"] < 1e-10  # every component: exact
    with pytest.raises(ValueError, match="n_components"):
        pca_metrics(x, x_test, 25)
    with pytest.raises(ValueError, match="labels_train"):
        pca_metrics(x, x_test, 2, labels_test)


def test_the_mlp_vae_learns_is_seeded_and_reports_like_evaluate_tvae():
    x, labels = _data()
    x_test, labels_test = _data(seed=1)
    model = train_mlp_vae(x, 2, seed=3, epochs=60, hidden=32, batch_size=16)
    again = train_mlp_vae(x, 2, seed=3, epochs=60, hidden=32, batch_size=16)
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)
    result = mlp_vae_metrics(model, x_test, labels_test, train=(x, labels))
    assert set(result) == {"mse", "active_units", "knn_accuracy"}
    assert result["mse"] < 0.5 * float(x_test.var())  # far better than the mean
    assert 1 <= result["active_units"] <= 2
    assert result["knn_accuracy"] > 0.8
    with pytest.raises(ValueError, match="train="):
        mlp_vae_metrics(model, x_test, labels_test)


def test_bad_inputs_raise():
    x, _ = _data()
    with pytest.raises(ValueError, match=r"x_train must be \(N, T, F\)"):
        train_mlp_vae(x[0], 2)
    padded = x.clone()
    padded[0, -1] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        pca_metrics(padded, x, 2)
