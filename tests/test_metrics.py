import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from tvae_lib import metrics
from tvae_lib.sines import make_sines

NAMES = ("normal", "obstruction", "high friction")


@pytest.fixture(scope="module")
def sines():
    return make_sines(300, seed=0), make_sines(300, seed=1)


def test_gru_models_shapes():
    x = torch.randn(4, 7, 5)
    assert metrics.GRUClassifier(5, 2)(x).shape == (4,)
    out = metrics.GRUPredictor(5, 2)(x)
    assert out.shape == (4, 7) and bool(((out > 0) & (out < 1)).all())


def test_discriminative_score_is_low_for_the_same_distribution(sines):
    real, other = sines
    score = metrics.discriminative_score(real, other, hidden_size=4, iterations=100, lr=1e-2)
    assert 0.0 <= score < 0.08


def test_discriminative_score_is_high_for_an_obvious_fake(sines):
    real, _ = sines
    flat = np.full_like(real, 0.75) + np.random.default_rng(0).normal(0, 0.1, real.shape)
    score = metrics.discriminative_score(real, flat.astype(np.float32), hidden_size=4,
                                         iterations=100, lr=1e-2)
    assert score > 0.4


def test_discriminative_score_is_reproducible(sines):
    real, other = sines
    kwargs = dict(hidden_size=2, iterations=20)
    first = metrics.discriminative_score(real, other, **kwargs)
    state = torch.get_rng_state()
    assert metrics.discriminative_score(real, other, **kwargs) == first
    torch.testing.assert_close(torch.get_rng_state(), state)  # the global RNG is left alone


def test_predictive_score_prefers_realistic_training_data(sines):
    real, other = sines
    shuffled = other[:, np.random.default_rng(0).permutation(24)]  # right values, wrong order
    good = metrics.predictive_score(real, other, hidden_size=4, iterations=150, lr=1e-2)
    bad = metrics.predictive_score(real, shuffled, hidden_size=4, iterations=150, lr=1e-2)
    assert good < 0.11 and bad > good + 0.02


def test_predictive_score_is_the_mae_of_the_trained_predictor(sines, monkeypatch):
    # Rebuild the score by hand from the trained predictor: MAE of the last channel, one step on.
    real, other = sines
    captured = {}
    original = metrics.GRUPredictor

    class Spy(original):
        def __init__(self, *args):
            super().__init__(*args)
            captured["model"] = self

    monkeypatch.setattr(metrics, "GRUPredictor", Spy)
    score = metrics.predictive_score(real, other, hidden_size=2, iterations=5)
    x = torch.from_numpy(real)
    with torch.no_grad():
        expected = (captured["model"](x[:, :-1, :-1]) - x[:, 1:, -1]).abs().mean().item()
    assert score == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embeddings_shapes(sines, method):
    real, other = sines
    a, b = metrics.embed_real_and_generated(real, other, method=method, n_samples=60)
    assert a.shape == (60, 2) and b.shape == (60, 2)
    assert np.isfinite(a).all() and np.isfinite(b).all()


def test_pca_embedding_is_sklearn_pca_of_channel_means(sines):
    real, other = sines
    a, _ = metrics.embed_real_and_generated(real, other, n_samples=300)
    order = np.random.default_rng(0).permutation(300)
    flat = real[order].mean(axis=2)
    np.testing.assert_allclose(a, PCA(2).fit_transform(flat), atol=1e-5)


def test_roc_auc_per_class_literal():
    # normal scores 0.1, 0.4; obstruction 0.35, 0.8 -> 3 of 4 pairs ranked right: AUC 0.75.
    scores = [0.1, 0.4, 0.35, 0.8, 0.9, 0.95]
    labels = [0, 0, 1, 1, 2, 2]
    auc = metrics.roc_auc_per_class(scores, labels, NAMES)
    assert auc == {"obstruction": 0.75, "high friction": 1.0}


def test_roc_auc_matches_pairwise_counting():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    scores = rng.normal(size=200) + labels
    auc = metrics.roc_auc_per_class(scores, labels, NAMES)
    for label, name in ((1, "obstruction"), (2, "high friction")):
        pos, neg = scores[labels == label], scores[labels == 0]
        pairwise = (pos[:, None] > neg[None, :]).mean()
        assert auc[name] == pytest.approx(pairwise)
    curves = metrics.roc_curve_per_class(scores, labels, NAMES)
    fpr, tpr = curves["obstruction"]
    assert fpr[0] == 0 and tpr[-1] == 1 and np.trapezoid(tpr, fpr) == pytest.approx(
        auc["obstruction"])


def test_pca_reconstruction_error():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 12))
    train = (rng.normal(size=(50, 2)) @ basis).reshape(50, 4, 3).astype(np.float32)
    inside = (rng.normal(size=(5, 2)) @ basis).reshape(5, 4, 3).astype(np.float32)
    outside = inside + rng.normal(size=inside.shape).astype(np.float32)
    error = metrics.pca_reconstruction_error(train, np.concatenate([inside, outside]), 2)
    assert error.shape == (10,)
    assert error[:5].max() < 1e-8 and error[5:].min() > 0.1


@pytest.mark.parametrize("call, match", [
    (lambda r: metrics.discriminative_score(r, r[:, :5]), "must share"),
    (lambda r: metrics.discriminative_score(r[0], r), r"real must have shape \(N, T, F\)"),
    (lambda r: metrics.discriminative_score(r, r, train_fraction=1.0), "train_fraction"),
    (lambda r: metrics.predictive_score(r[..., :1], r[..., :1]), "F >= 2"),
    (lambda r: metrics.predictive_score(r, r, iterations=0), "iterations must be"),
    (lambda r: metrics.embed_real_and_generated(r, r, method="umap"), "method must be"),
    (lambda r: metrics.pca_reconstruction_error(r, r, 0), "n_components"),
    (lambda r: metrics.roc_auc_per_class([0.1, 0.2], [0, 5], NAMES), "labels must lie"),
])
def test_bad_inputs(sines, call, match):
    with pytest.raises(ValueError, match=match):
        call(sines[0])


def test_type_error_for_lists():
    with pytest.raises(TypeError, match="real must be a NumPy array"):
        metrics.discriminative_score([[[0.0]]], np.zeros((1, 1, 1), np.float32))


def test_bootstrap_mean_auc_difference():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    good = labels + rng.normal(scale=0.5, size=300)  # separates faults from normal well
    poor = labels + rng.normal(scale=3.0, size=300)
    same = metrics.bootstrap_mean_auc_difference(good, good, labels, NAMES, n_boot=20)
    np.testing.assert_array_equal(same, np.zeros(20))
    diffs = metrics.bootstrap_mean_auc_difference(good, poor, labels, NAMES, n_boot=200, seed=1)
    point = np.mean(list(metrics.roc_auc_per_class(good, labels, NAMES).values())) - np.mean(
        list(metrics.roc_auc_per_class(poor, labels, NAMES).values())
    )
    assert diffs.shape == (200,) and (diffs > 0).all()
    assert np.median(diffs) == pytest.approx(point, abs=0.03)
    # the first draw is the first resample of the seeded generator
    index = np.random.default_rng(1).integers(0, 300, 300)
    first = np.mean(list(metrics.roc_auc_per_class(good[index], labels[index], NAMES).values()))
    first -= np.mean(list(metrics.roc_auc_per_class(poor[index], labels[index], NAMES).values()))
    assert diffs[0] == pytest.approx(first)
    with pytest.raises(ValueError, match="n_boot"):
        metrics.bootstrap_mean_auc_difference(good, poor, labels, NAMES, n_boot=0)
    with pytest.raises(ValueError, match="shape"):
        metrics.bootstrap_mean_auc_difference(good[:10], poor, labels, NAMES)
