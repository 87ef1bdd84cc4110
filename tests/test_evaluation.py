import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from tvae_lib import evaluation
from tvae_lib.masks import padding_mask
from tvae_lib.tvae import TransformerVAE, TVAEConfig

CONFIG = TVAEConfig(d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1, n_decoder_layers=1,
                    max_len=12)  # fmt: skip


def _model():
    torch.manual_seed(0)
    return TransformerVAE(CONFIG).train()


def test_evaluate_tvae_without_labels_on_two_sequences_restores_the_mode():
    model = _model()
    report = evaluation.evaluate_tvae(model, torch.randn(2, 12, 3))
    assert model.training
    assert {"mse_free_running", "mse_teacher_forced", "kl", "active_units"} <= set(report)
    assert "knn_accuracy" not in report and len(report["kl_per_dim"]) == 2
    with pytest.raises(ValueError, match="at least 2 sequences"):
        evaluation.evaluate_tvae(model, torch.randn(1, 12, 3))


def test_masked_errors_ignore_the_padding():
    model = _model()
    x = torch.randn(4, 12, 3)
    mask = padding_mask(torch.tensor([12, 5, 8, 3]), 12)
    garbage = x.masked_fill(~mask[..., None], float("nan"))
    for free_running in (True, False):
        a = evaluation.reconstruction_mse(model, x, mask, free_running=free_running)
        b = evaluation.reconstruction_mse(model, garbage, mask, free_running=free_running,
                                          batch_size=3)  # fmt: skip
        assert a == pytest.approx(b, rel=1e-6) and np.isfinite(a)
    own, shuffled = evaluation.shuffle_test(model, garbage, mask)
    assert np.isfinite(own) and np.isfinite(shuffled)


def test_knn_train_to_test_and_cross_validated():
    rng = np.random.default_rng(0)
    z_train = np.concatenate([rng.normal(0, 0.1, (10, 2)), rng.normal(3, 0.1, (10, 2))])
    y = np.repeat([0, 1], 10)
    assert evaluation.knn_accuracy(z_train, y, z_train + 0.01, y) == 1.0
    assert evaluation.knn_accuracy(z_train, y, z_train, 1 - y) == 0.0
    assert evaluation.knn_cv_accuracy(z_train, y) == 1.0
    with pytest.raises(ValueError, match="smallest class"):
        evaluation.knn_cv_accuracy(z_train[:12], y[:12])
    with pytest.raises(ValueError, match="k=30 is more than the 20"):
        evaluation.knn_accuracy(z_train, y, z_train, y, k=30)
    with pytest.raises(ValueError, match=r"labels_test must have shape \(20,\)"):
        evaluation.knn_accuracy(z_train, y, z_train, y[:5])


def test_evaluate_tvae_with_a_training_set_scores_train_to_test():
    model = _model()
    x, labels = torch.randn(12, 12, 3), torch.tensor([0, 1] * 6)
    report = evaluation.evaluate_tvae(model, x[:6], labels=labels[:6],
                                      train=(x[6:], None, labels[6:]), k=3)  # fmt: skip
    mu_train, _ = evaluation.encode_means(model, x[6:])
    mu_test, _ = evaluation.encode_means(model, x[:6])
    expected = evaluation.knn_accuracy(mu_train, labels[6:], mu_test, labels[:6], k=3)
    assert report["knn_accuracy"] == expected


def test_pca_and_mean_baselines_count_real_steps_only():
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(30, 6, 2)), rng.normal(size=(10, 6, 2))
    pca = PCA(2).fit(train.reshape(30, -1))
    rebuilt = pca.inverse_transform(pca.transform(test.reshape(10, -1)))
    expected = ((rebuilt - test.reshape(10, -1)) ** 2).mean()
    assert evaluation.pca_mse(train, test, 2) == pytest.approx(expected)
    expected_mean = ((test - train.mean(axis=0)) ** 2).mean()
    assert evaluation.mean_mse(train, test) == pytest.approx(expected_mean)
    # padding: whatever it holds, only real steps count; zeros past the end are not "easy" points
    mask = np.ones((10, 6), dtype=bool)
    mask[:, 3:] = False
    padded = test.copy()
    padded[:, 3:] = np.nan
    masked = evaluation.pca_mse(train, padded, 2, test_mask=mask)
    zero_padded = test.copy()
    zero_padded[:, 3:] = 0.0
    assert masked == pytest.approx(evaluation.pca_mse(train, zero_padded, 2, test_mask=mask))
    assert masked != pytest.approx(evaluation.pca_mse(train, zero_padded, 2))
    assert np.isfinite(evaluation.mean_mse(train, padded, test_mask=mask))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: evaluation.pca_mse(np.zeros((5, 6)), np.zeros((5, 6, 2))), r"train must have shape \(N, T, F\)"),
        (lambda: evaluation.pca_mse(np.zeros((5, 6, 2)), np.zeros((5, 4, 2))), "share"),
        (lambda: evaluation.pca_mse(np.zeros((5, 6, 2)), np.zeros((5, 6, 2)), 9), "at most min"),
        (lambda: evaluation.pca_mse(np.zeros((5, 6, 2)), np.full((5, 6, 2), np.inf)), "NaN or inf"),
        (lambda: evaluation.mean_mse(np.zeros((5, 6, 2)), np.zeros((5, 6, 2)), test_mask=np.ones((5, 5))), "mask of test"),
    ],
)  # fmt: skip
def test_baseline_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_roughness_is_the_mean_absolute_step_change_of_real_pairs():
    x = torch.tensor([[[0.0, 1.0], [1.0, 1.0], [3.0, 1.0], [9.0, 9.0]]])  # (1, 4, 2)
    np.testing.assert_allclose(evaluation.roughness(x), [3.0, 8 / 3])
    mask = torch.tensor([[True, True, True, False]])  # the jump into padding never counts
    np.testing.assert_allclose(evaluation.roughness(x, mask), [1.5, 0.0])
    noisy = torch.randn(200, 50, 1, generator=torch.Generator().manual_seed(0))
    # white noise of unit variance: |a - b| with a - b ~ N(0, 2) has mean 2 / sqrt(pi)
    assert evaluation.roughness(noisy)[0] == pytest.approx(2 / np.sqrt(np.pi), rel=0.02)
    with pytest.raises(ValueError, match="two real steps"):
        evaluation.roughness(x, torch.tensor([[True, False, False, False]]))
    with pytest.raises(ValueError, match="T >= 2"):
        evaluation.roughness(x[:, :1])
