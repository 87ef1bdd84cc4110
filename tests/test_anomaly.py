import numpy as np
import pytest
from sklearn.decomposition import PCA

from tvae_lib import anomaly

NAMES = ("normal", "obstruction", "high friction")


def test_roc_auc_per_class_literal():
    # normal scores 0.1, 0.4; obstruction 0.35, 0.8 -> 3 of 4 pairs ranked right: AUC 0.75.
    scores = [0.1, 0.4, 0.35, 0.8, 0.9, 0.95]
    labels = [0, 0, 1, 1, 2, 2]
    auc = anomaly.roc_auc_per_class(scores, labels, NAMES)
    assert auc == {"obstruction": 0.75, "high friction": 1.0}
    # another normal class: the pairs change, and an absent class is left out
    assert anomaly.roc_auc_per_class(scores[2:], labels[2:], NAMES, normal_label=1) == {
        "high friction": 1.0}


def test_roc_auc_matches_pairwise_counting():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    scores = rng.normal(size=200) + labels
    auc = anomaly.roc_auc_per_class(scores, labels, NAMES)
    for label, name in ((1, "obstruction"), (2, "high friction")):
        pos, neg = scores[labels == label], scores[labels == 0]
        pairwise = (pos[:, None] > neg[None, :]).mean()
        assert auc[name] == pytest.approx(pairwise)
    curves = anomaly.roc_curve_per_class(scores, labels, NAMES)
    fpr, tpr = curves["obstruction"]
    assert fpr[0] == 0 and tpr[-1] == 1 and np.trapezoid(tpr, fpr) == pytest.approx(
        auc["obstruction"])


def test_bootstrap_mean_auc_difference():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    good = labels + rng.normal(scale=0.5, size=300)  # separates faults from normal well
    poor = labels + rng.normal(scale=3.0, size=300)
    same = anomaly.bootstrap_mean_auc_difference(good, good, labels, NAMES, n_boot=20)
    np.testing.assert_array_equal(same, np.zeros(20))
    diffs = anomaly.bootstrap_mean_auc_difference(good, poor, labels, NAMES, n_boot=200, seed=1)
    point = np.mean(list(anomaly.roc_auc_per_class(good, labels, NAMES).values())) - np.mean(
        list(anomaly.roc_auc_per_class(poor, labels, NAMES).values())
    )
    assert diffs.shape == (200,) and (diffs > 0).all()
    assert np.median(diffs) == pytest.approx(point, abs=0.03)
    # the first draw is the first resample of the seeded generator
    index = np.random.default_rng(1).integers(0, 300, 300)
    first = np.mean(list(anomaly.roc_auc_per_class(good[index], labels[index], NAMES).values()))
    first -= np.mean(list(anomaly.roc_auc_per_class(poor[index], labels[index], NAMES).values()))
    assert diffs[0] == first


def _low_rank(n: int, seed: int, t: int = 4, f: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(99).normal(size=(2, t * f))
    return (rng.normal(size=(n, 2)) @ basis).reshape(n, t, f).astype(np.float32)


def test_pca_reconstruction_error():
    train, inside = _low_rank(50, 0), _low_rank(5, 1)
    outside = inside + np.random.default_rng(2).normal(size=inside.shape).astype(np.float32)
    error = anomaly.pca_reconstruction_error(train, np.concatenate([inside, outside]), 2)
    assert error.shape == (10,)
    assert error[:5].max() < 1e-8 and error[5:].min() > 0.1


def test_pca_reconstruction_error_without_lengths_is_the_plain_pca_error():
    train, x = _low_rank(50, 0), _low_rank(8, 1) + np.float32(0.3)
    pca = PCA(3).fit(train.reshape(50, -1))
    flat = x.reshape(8, -1)
    expected = ((pca.inverse_transform(pca.transform(flat)) - flat) ** 2).mean(axis=1)
    np.testing.assert_array_equal(anomaly.pca_reconstruction_error(train, x, 3), expected)
    all_real = anomaly.pca_reconstruction_error(train, x, 3, train_lengths=np.full(50, 4),
                                                lengths=np.full(8, 4))
    np.testing.assert_array_equal(all_real, expected)


@pytest.fixture(scope="module")
def padded():
    """Low-rank sequences of lengths 1..6 in T = 6, padded with junk: (train, x, lengths...)."""
    rng = np.random.default_rng(3)
    train, x = _low_rank(40, 0, t=6), _low_rank(10, 1, t=6) + np.float32(0.5)
    train_lengths, lengths = rng.integers(1, 7, 40), np.arange(1, 11) % 6 + 1
    for data, n in ((train, train_lengths), (x, lengths)):
        pad = np.arange(6)[None, :] >= n[:, None]  # (N, T)
        data[pad] = rng.choice([np.nan, np.inf, -np.inf, 1e20], size=(pad.sum(), 3))
    return train, x, train_lengths, lengths


def test_pca_reconstruction_error_counts_real_steps_only(padded):
    train, x, train_lengths, lengths = padded
    error = anomaly.pca_reconstruction_error(train, x, 2, train_lengths=train_lengths,
                                             lengths=lengths)
    # by hand: padding set to 0, PCA on T F vectors, squared error averaged over L F values
    zeroed = [np.where((np.arange(6)[None, :] < n[:, None])[..., None], d, 0)
              for d, n in ((train, train_lengths), (x, lengths))]
    pca = PCA(2).fit(zeroed[0].reshape(40, -1))
    rebuilt = pca.inverse_transform(pca.transform(zeroed[1].reshape(10, -1))).reshape(x.shape)
    expected = [((rebuilt[i, :n] - x[i, :n]) ** 2).mean() for i, n in enumerate(lengths)]
    assert error.shape == (10,) and np.isfinite(error).all()
    np.testing.assert_allclose(error, expected, rtol=1e-5)
    # averaged over all T F values instead, the well-rebuilt padding would dilute the error
    diluted = anomaly.pca_reconstruction_error(zeroed[0], zeroed[1], 2)
    assert (diluted[lengths < 6] < error[lengths < 6]).all()


def test_what_padding_holds_cannot_reach_the_pca_error(padded):
    train, x, train_lengths, lengths = padded
    blank = [np.where(np.isfinite(d) & (np.abs(d) < 1e10), d, 0) for d in (train, x)]
    kwargs = dict(train_lengths=train_lengths, lengths=lengths)
    np.testing.assert_array_equal(anomaly.pca_reconstruction_error(train, x, 2, **kwargs),
                                  anomaly.pca_reconstruction_error(*blank, 2, **kwargs))


S3, L3 = [0.1, 0.4, 0.35, 0.8, 0.9, 0.95], [0, 0, 1, 1, 2, 2]
X = np.random.default_rng(0).normal(size=(4, 3, 2)).astype(np.float32)
X_NAN = X.copy()
X_NAN[1, 2, 0] = np.nan


@pytest.mark.parametrize("call, error, match", [
    (lambda: anomaly.roc_auc_per_class([0.1, 0.2], [0, 5], NAMES), ValueError,
     r"labels must lie in \[0, 3\)"),
    (lambda: anomaly.roc_auc_per_class([0.1, 0.2], [0, -1], NAMES), ValueError,
     "labels must lie"),
    (lambda: anomaly.roc_auc_per_class([0.1, 0.2], [0.0, 1.5], NAMES), ValueError,
     "labels must hold integer"),
    (lambda: anomaly.roc_auc_per_class([0.1, 0.2], [False, True], NAMES), ValueError,
     "labels must hold integer"),
    (lambda: anomaly.roc_auc_per_class([0.1, np.nan], [0, 1], NAMES), ValueError,
     "scores must be finite"),
    (lambda: anomaly.roc_auc_per_class([0.1, 0.2, 0.3], [0, 1], NAMES), ValueError,
     r"scores and labels must both have shape \(N,\)"),
    (lambda: anomaly.roc_auc_per_class([], [], NAMES), ValueError, "N >= 1"),
    (lambda: anomaly.roc_auc_per_class([0.1, 0.2], [1, 2], NAMES), ValueError,
     "no sample of the normal class"),
    (lambda: anomaly.roc_auc_per_class(S3, L3, NAMES, normal_label=3), ValueError,
     "normal_label"),
    (lambda: anomaly.roc_auc_per_class(S3, L3, NAMES[:1]), ValueError, "class_names"),
    (lambda: anomaly.roc_curve_per_class(S3[:2] + [np.inf] + S3[3:], L3, NAMES), ValueError,
     "scores must be finite"),
    (lambda: anomaly.bootstrap_mean_auc_difference(S3, S3[:5] + [np.nan], L3, NAMES),
     ValueError, "scores_b must be finite"),
    (lambda: anomaly.bootstrap_mean_auc_difference(S3[:5], S3, L3, NAMES), ValueError,
     "scores_a and labels must both have shape"),
    (lambda: anomaly.bootstrap_mean_auc_difference(S3, S3, L3, NAMES, n_boot=0), ValueError,
     "n_boot"),
    (lambda: anomaly.bootstrap_mean_auc_difference(S3, S3, L3, NAMES, n_boot=True), TypeError,
     "n_boot"),
    (lambda: anomaly.pca_reconstruction_error(X, X, 0), ValueError, "n_components"),
    (lambda: anomaly.pca_reconstruction_error(X, X, 5), ValueError, r"n_components .*\[1, 4\]"),
    (lambda: anomaly.pca_reconstruction_error(X, X, 1.0), TypeError, "n_components"),
    (lambda: anomaly.pca_reconstruction_error(X, X[:, :2], 1), ValueError, r"share \(T, F\)"),
    (lambda: anomaly.pca_reconstruction_error(X, X_NAN, 1), ValueError,
     r"x has a non-finite value at a real step \(sequence 1, step 2\)"),
    (lambda: anomaly.pca_reconstruction_error(X_NAN, X, 1), ValueError, "train has a non-finite"),
    (lambda: anomaly.pca_reconstruction_error(X, X, 1, train_lengths=[3, 3, 3, 4]), ValueError,
     "train_lengths must lie"),
    (lambda: anomaly.pca_reconstruction_error(X, X, 1, lengths=[3, 0, 3, 3]), ValueError,
     "lengths must lie"),
    (lambda: anomaly.pca_reconstruction_error(X[0], X, 1), ValueError,
     r"train must have shape \(N, T, F\)"),
])
def test_bad_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_nan_padding_is_no_error_for_the_pca():
    # the same NaN as above, at a padded step: fine
    error = anomaly.pca_reconstruction_error(X, X_NAN, 1, lengths=[3, 2, 3, 3])
    assert np.isfinite(error).all()
