"""Scoring anomalies: ROC AUC per fault class, a paired bootstrap, and a PCA baseline.

An anomaly detector gives every sequence a score, higher for "more anomalous"; here it is
judged by how well that score ranks each fault class above the normal class (ROC AUC, one
number per fault class, so that a detector which finds obstructions but misses high friction
shows it). Two detectors scored on the same sequences are compared with a *paired* bootstrap,
which resamples the sequences once per draw and scores both detectors on that draw.

The baseline every detector should beat is the PCA reconstruction error: fit a PCA on normal
sequences and score each sequence by how badly the PCA rebuilds it. **Padding matters here.**
Padded steps are easy to rebuild (they are all alike), so averaging the error over all T steps
dilutes it with near-zero terms, the more so the shorter the sequence, and makes the PCA look
better than it is: on one padded data set its mean error was 0.307 averaged over every step
and 0.543 over the real steps only.
:func:`pca_reconstruction_error` therefore takes lengths, sets the padded steps to 0 before
fitting and projecting (so NaN padding cannot poison the PCA) and averages each sequence's
squared error over its real steps only. Without lengths, the numbers are those of a plain
PCA over all T F values.

Everything goes through scikit-learn (``roc_auc_score``, ``roc_curve``, ``PCA``).

Shapes: N (or M) sequences, T steps, F channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score, roc_curve

from tvae_lib import checks

__all__ = [
    "roc_auc_per_class",
    "roc_curve_per_class",
    "bootstrap_mean_auc_difference",
    "pca_reconstruction_error",
]


def _check_scores(
    scores, labels, class_names: Sequence[str], normal_label: int, name: str = "scores"
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(scores float64 (N,), labels int (N,), normal_label)``, checked."""
    n_classes = len(class_names)
    if n_classes < 2:
        raise ValueError(f"class_names must name >= 2 classes, got {list(class_names)}")
    normal_label = checks.int_in_range("normal_label", normal_label, 0, n_classes - 1)
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    if scores.ndim != 1 or scores.shape != labels.shape or len(scores) == 0:
        raise ValueError(f"{name} and labels must both have shape (N,) with N >= 1, got "
                         f"{scores.shape} and {labels.shape}")
    if not np.isfinite(scores).all():
        raise ValueError(f"{name} must be finite, got {scores[~np.isfinite(scores)][0]} at index "
                         f"{np.flatnonzero(~np.isfinite(scores))[0]}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must hold integer class indices, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got {labels.min()}..."
                         f"{labels.max()}")
    if not (labels == normal_label).any():
        raise ValueError(f"labels has no sample of the normal class {normal_label}")
    return scores, labels, normal_label


def _fault_classes(labels: np.ndarray, class_names: Sequence[str], normal_label: int):
    """``(label, name, chosen)`` per fault class present; ``chosen``: its and normal samples."""
    for label, name in enumerate(class_names):
        if label == normal_label or not (labels == label).any():
            continue
        yield label, name, (labels == normal_label) | (labels == label)


def _auc_per_class(scores, labels, class_names, normal_label) -> dict[str, float]:
    return {name: float(roc_auc_score(labels[chosen] == label, scores[chosen]))
            for label, name, chosen in _fault_classes(labels, class_names, normal_label)}


def roc_auc_per_class(
    scores, labels, class_names: Sequence[str], normal_label: int = 0
) -> dict[str, float]:
    """ROC AUC of an anomaly score for each fault class against the normal class.

    For fault class ``c``, only the normal and class-``c`` samples are used, with class ``c``
    as the positive one: the AUC is the probability that a random class-``c`` sample scores
    higher than a random normal one.

    Args:
        scores: (N,) finite anomaly scores, higher = more anomalous.
        labels: (N,) int class indices in [0, len(class_names)); the normal class is present.
        class_names: Name of each class index.
        normal_label: Index of the normal class.

    Returns:
        ``{class name: AUC}`` for every class present other than the normal one.

    Raises:
        ValueError: Mismatched shapes, non-finite scores, non-integer or out-of-range labels.
    """
    scores, labels, normal_label = _check_scores(scores, labels, class_names, normal_label)
    return _auc_per_class(scores, labels, class_names, normal_label)


def roc_curve_per_class(
    scores, labels, class_names: Sequence[str], normal_label: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """ROC curves, ``{class name: (false positive rates, true positive rates)}``.

    Same pairing and arguments as :func:`roc_auc_per_class` (each fault class against the
    normal one).

    Raises:
        ValueError: As :func:`roc_auc_per_class`.
    """
    scores, labels, normal_label = _check_scores(scores, labels, class_names, normal_label)
    result = {}
    for label, name, chosen in _fault_classes(labels, class_names, normal_label):
        fpr, tpr, _ = roc_curve(labels[chosen] == label, scores[chosen])
        result[name] = (fpr, tpr)
    return result


def bootstrap_mean_auc_difference(
    scores_a, scores_b, labels, class_names: Sequence[str], n_boot: int = 1000, seed: int = 0,
    normal_label: int = 0,
) -> np.ndarray:
    """Paired bootstrap of the difference in mean per-class ROC AUC between two detectors.

    Both detectors score the same samples, so each bootstrap draw resamples the samples (with
    replacement) once and evaluates both on that draw; the spread of the differences is the
    uncertainty of "detector a beats detector b" on data like this.

    Args:
        scores_a: (N,) finite anomaly scores of detector a, higher = more anomalous.
        scores_b: (N,) those of detector b, on the same samples.
        labels: (N,) int class indices.
        class_names: Name of each class index.
        n_boot: Number of bootstrap draws.
        seed: Seed of the resampling.
        normal_label: Index of the normal class.

    Returns:
        (n_boot,) differences ``mean AUC(a) - mean AUC(b)``, one per draw.

    Raises:
        TypeError, ValueError: A bad argument (the message names it).
    """
    scores_a, labels, normal_label = _check_scores(
        scores_a, labels, class_names, normal_label, "scores_a")
    scores_b, _, _ = _check_scores(scores_b, labels, class_names, normal_label, "scores_b")
    n_boot = checks.positive_int("n_boot", n_boot)
    rng = np.random.default_rng(checks.non_negative_int("seed", seed))
    differences = np.empty(n_boot)
    for i in range(n_boot):
        index = rng.integers(0, len(labels), len(labels))  # (N,) a resample
        auc_a = _auc_per_class(scores_a[index], labels[index], class_names, normal_label)
        auc_b = _auc_per_class(scores_b[index], labels[index], class_names, normal_label)
        differences[i] = np.mean(list(auc_a.values())) - np.mean(list(auc_b.values()))
    return differences


def pca_reconstruction_error(
    train, x, n_components: int, *,
    train_lengths: checks.Lengths = None, lengths: checks.Lengths = None,
) -> np.ndarray:
    """The classic anomaly baseline: how badly a PCA of the normal data reconstructs ``x``.

    Each sequence, its padded steps set to 0, is flattened to a T F vector; PCA with
    ``n_components`` components is fitted on ``train`` and each row of ``x`` is projected and
    reconstructed. A sequence's error is the mean squared error over its real steps (L F
    values); padded steps, whatever the PCA rebuilds there, do not count.

    Args:
        train: (N, T, F) normal sequences to fit the PCA on.
        x: (M, T, F) sequences to score.
        n_components: Number of principal components kept, in [1, min(N, T F)].
        train_lengths: (N,) real steps of each ``train`` sequence; ``None``: all T.
        lengths: (M,) real steps of each ``x`` sequence; ``None``: all T.

    Returns:
        (M,) float32 mean squared reconstruction error per sequence, over its real steps.

    Raises:
        TypeError, ValueError: A bad argument (the message names it), including a
            non-finite value at a real step.
    """
    train, _ = checks.padded_sequences("train", train, train_lengths)
    x, lengths = checks.padded_sequences("x", x, lengths, "lengths")
    if train.shape[1:] != x.shape[1:]:
        raise ValueError(f"train and x must share (T, F), got {train.shape[1:]} and {x.shape[1:]}")
    steps, channels = x.shape[1:]
    n_components = checks.int_in_range("n_components", n_components, 1,
                                       min(len(train), steps * channels))
    x_flat = x.reshape(len(x), -1)  # (M, T F)
    pca = PCA(n_components=n_components).fit(train.reshape(len(train), -1))  # on (N, T F)
    squared = (pca.inverse_transform(pca.transform(x_flat)) - x_flat) ** 2  # (M, T F)
    if (lengths == steps).all():
        return squared.mean(axis=1)
    real = np.arange(steps) < lengths[:, None]  # (M, T)
    squared = np.where(real[..., None], squared.reshape(x.shape), 0).sum(axis=(1, 2))  # (M,)
    return (squared / (lengths * channels)).astype(np.float32)
