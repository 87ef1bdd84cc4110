"""Judging generated sequences, and scoring anomalies: the TimeGAN evaluation protocol.

Yoon et al. (2019) judge a generator of time series with two *post-hoc* models, trained after
the fact on real and generated data and deliberately small (a one-layer GRU whose hidden size
is half the number of channels, trained for a fixed number of iterations with Adam):

- the **discriminative score**: a GRU classifier learns to tell real sequences (label 1) from
  generated ones (label 0) on 80% of each; on the held-out 20% the score is
  ``|accuracy - 0.5|``. Zero means the classifier cannot do better than a coin.
- the **predictive score** ("train on synthetic, test on real"): a GRU learns, on generated
  sequences only, to predict the next step of the last channel from the other channels; the
  score is its mean absolute error on the real sequences. Lower is better.

Plus the two-dimensional views of real vs generated data the paper plots (PCA and t-SNE of
each sequence averaged over its channels), and the ROC tools of the anomaly-detection
section: ROC AUC per fault class and a PCA reconstruction-error baseline, all through
scikit-learn.

Shapes: N sequences, T steps, F channels, B batch.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import roc_auc_score, roc_curve
from torch import nn
from tqdm.auto import tqdm

__all__ = [
    "bootstrap_mean_auc_difference",
    "GRUClassifier",
    "GRUPredictor",
    "discriminative_score",
    "predictive_score",
    "embed_real_and_generated",
    "roc_auc_per_class",
    "roc_curve_per_class",
    "pca_reconstruction_error",
]


def _as_array(name: str, x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array or tensor of shape (N, T, F), got {type(x)}")
    if x.ndim != 3 or min(x.shape) < 1:
        raise ValueError(f"{name} must have shape (N, T, F) with N, T, F >= 1, got {x.shape}")
    return x.astype(np.float32, copy=False)


def _check_pair(real, generated) -> tuple[np.ndarray, np.ndarray]:
    real, generated = _as_array("real", real), _as_array("generated", generated)
    if real.shape[1:] != generated.shape[1:]:
        raise ValueError(
            f"real and generated must share (T, F), got {real.shape[1:]} and {generated.shape[1:]}"
        )
    return real, generated


class GRUClassifier(nn.Module):
    """A one-layer GRU whose last hidden state is mapped to one logit (real vs generated).

    Args:
        n_features: Channels F of the input.
        hidden_size: Width of the GRU state.

    Shape:
        - x: (B, T, F)
        - output: (B,) logits, positive for "real"
    """

    def __init__(self, n_features: int, hidden_size: int):
        super().__init__()
        self.gru = nn.GRU(n_features, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, last = self.gru(x)  # (1, B, hidden)
        return self.head(last[0]).squeeze(-1)  # (B,)


class GRUPredictor(nn.Module):
    """A one-layer GRU that predicts a value in [0, 1] at every step (a sigmoid output).

    Args:
        n_features: Channels of the input.
        hidden_size: Width of the GRU state.

    Shape:
        - x: (B, T, F)
        - output: (B, T) predictions in (0, 1)
    """

    def __init__(self, n_features: int, hidden_size: int):
        super().__init__()
        self.gru = nn.GRU(n_features, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(x)  # (B, T, hidden)
        return torch.sigmoid(self.head(states)).squeeze(-1)  # (B, T)


def _train_fixed_iterations(model, loss_of_batch, n_items, iterations, batch_size, lr,
                            generator, progress, description) -> None:
    """Adam on random mini-batches (drawn without replacement within a batch).

    The post-hoc models are tiny, so on the CPU one thread is fastest (several threads spend
    more time synchronising than computing); the thread count is restored afterwards.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model.train()
    try:
        for _ in tqdm(range(iterations), disable=not progress, desc=description):
            index = torch.randperm(n_items, generator=generator)[:batch_size]  # (B,)
            loss = loss_of_batch(index)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
        model.eval()


def _check_training_args(iterations: int, batch_size: int, hidden_size: int) -> None:
    for name, value in (("iterations", iterations), ("batch_size", batch_size),
                        ("hidden_size", hidden_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def discriminative_score(
    real,
    generated,
    hidden_size: int | None = None,
    iterations: int = 2000,
    batch_size: int = 128,
    train_fraction: float = 0.8,
    lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> float:
    """``|accuracy - 0.5|`` of a post-hoc GRU classifier of real vs generated sequences.

    Both sets are split at random into ``train_fraction`` for training and the rest for
    testing; the classifier is trained for ``iterations`` mini-batches of the pooled training
    sequences and its accuracy is measured on the pooled test sequences (threshold 0.5).

    Args:
        real: (N, T, F) real sequences (array or tensor).
        generated: (M, T, F) generated sequences.
        hidden_size: GRU width; ``None`` gives TimeGAN's ``max(1, F // 2)``.
        iterations: Number of Adam steps (2,000 in TimeGAN).
        batch_size: Sequences per step (128 in TimeGAN).
        train_fraction: Share of each set used for training, in (0, 1).
        lr: Adam's learning rate.
        seed: Seeds the split, the initial weights and the batches.
        device: Where the small GRU runs (the CPU is usually fastest for it).
        progress: Show a tqdm bar.

    Returns:
        The score, in [0, 0.5]; 0 when real and generated cannot be told apart.
    """
    real, generated = _check_pair(real, generated)
    hidden_size = max(1, real.shape[2] // 2) if hidden_size is None else hidden_size
    _check_training_args(iterations, batch_size, hidden_size)
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction!r}")
    rng = np.random.default_rng(seed)
    splits = []
    for data in (real, generated):
        order = rng.permutation(len(data))
        n_train = int(round(train_fraction * len(data)))
        if n_train < 1 or n_train == len(data):
            raise ValueError(f"each set needs sequences for both splits, got N={len(data)}")
        splits.append((data[order[:n_train]], data[order[n_train:]]))
    (real_train, real_test), (gen_train, gen_test) = splits

    def pooled(a: np.ndarray, b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(np.concatenate([a, b])).to(device)  # (Na + Nb, T, F)
        y = torch.cat([torch.ones(len(a)), torch.zeros(len(b))]).to(device)  # (Na + Nb,)
        return x, y

    x_train, y_train = pooled(real_train, gen_train)
    x_test, y_test = pooled(real_test, gen_test)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GRUClassifier(real.shape[2], hidden_size).to(device)
    loss_fn = nn.BCEWithLogitsLoss()
    _train_fixed_iterations(
        model, lambda i: loss_fn(model(x_train[i]), y_train[i]), len(x_train), iterations,
        batch_size, lr, generator, progress, "discriminator",
    )
    with torch.no_grad():
        predicted_real = model(x_test) > 0  # (N_test,)
    accuracy = (predicted_real == y_test.bool()).float().mean().item()
    return abs(accuracy - 0.5)


def predictive_score(
    real,
    generated,
    hidden_size: int | None = None,
    iterations: int = 5000,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> float:
    """Train on synthetic, test on real: next-step error of a GRU trained on generated data.

    As in TimeGAN, the GRU reads the first ``F - 1`` channels of steps ``0..T-2`` and predicts
    the last channel at steps ``1..T-1``, with a sigmoid output (data scaled to [0, 1]) and an
    L1 loss. It is trained on ``generated`` only and scored on every ``real`` sequence.

    Args:
        real: (N, T, F) real sequences with F >= 2 and values in [0, 1].
        generated: (M, T, F) generated sequences.
        hidden_size: GRU width; ``None`` gives TimeGAN's ``max(1, F // 2)``.
        iterations: Number of Adam steps (5,000 in TimeGAN).
        batch_size: Sequences per step (128 in TimeGAN).
        lr: Adam's learning rate.
        seed: Seeds the initial weights and the batches.
        device: Where the small GRU runs.
        progress: Show a tqdm bar.

    Returns:
        The mean absolute error on the real sequences (lower is better).
    """
    real, generated = _check_pair(real, generated)
    if real.shape[2] < 2 or real.shape[1] < 2:
        raise ValueError(f"predictive_score needs T >= 2 and F >= 2, got (T, F) = {real.shape[1:]}")
    hidden_size = max(1, real.shape[2] // 2) if hidden_size is None else hidden_size
    _check_training_args(iterations, batch_size, hidden_size)

    def inputs_and_targets(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(x).to(device)
        return x[:, :-1, :-1], x[:, 1:, -1]  # (N, T-1, F-1), (N, T-1)

    x_train, y_train = inputs_and_targets(generated)
    x_test, y_test = inputs_and_targets(real)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GRUPredictor(real.shape[2] - 1, hidden_size).to(device)
    _train_fixed_iterations(
        model, lambda i: (model(x_train[i]) - y_train[i]).abs().mean(), len(x_train),
        iterations, batch_size, lr, generator, progress, "predictor",
    )
    with torch.no_grad():
        return (model(x_test) - y_test).abs().mean().item()


def embed_real_and_generated(
    real,
    generated,
    method: str = "pca",
    n_samples: int = 1000,
    perplexity: float = 40.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-dimensional views of real and generated sequences, as in the TimeGAN paper.

    Up to ``n_samples`` sequences of each set are drawn; each is averaged over its channels
    into a length-T vector. PCA is fitted on the real vectors and applied to both; t-SNE is
    run on the two sets together.

    Args:
        real: (N, T, F) real sequences.
        generated: (M, T, F) generated sequences.
        method: ``"pca"`` or ``"tsne"``.
        n_samples: Sequences drawn from each set.
        perplexity: t-SNE's perplexity.
        seed: Seeds the draw and t-SNE.

    Returns:
        ``(real_2d, generated_2d)``, of shapes (n, 2) and (m, 2).
    """
    real, generated = _check_pair(real, generated)
    if method not in ("pca", "tsne"):
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    rng = np.random.default_rng(seed)
    n = min(n_samples, len(real), len(generated))
    real_flat = real[rng.permutation(len(real))[:n]].mean(axis=2)  # (n, T)
    gen_flat = generated[rng.permutation(len(generated))[:n]].mean(axis=2)  # (n, T)
    if method == "pca":
        pca = PCA(n_components=2).fit(real_flat)
        return pca.transform(real_flat), pca.transform(gen_flat)
    tsne = TSNE(n_components=2, perplexity=min(perplexity, (2 * n - 1) / 3), max_iter=300,
                init="pca", random_state=seed)
    both = tsne.fit_transform(np.concatenate([real_flat, gen_flat]))  # (2 n, 2)
    return both[:n], both[n:]


def _check_scores(scores, labels, class_names) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(
            f"scores and labels must both have shape (N,), got {scores.shape} and {labels.shape}"
        )
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise ValueError(f"labels must lie in [0, {len(class_names)}), got {labels.min()}..."
                         f"{labels.max()}")
    return scores, labels


def roc_auc_per_class(scores, labels, class_names, normal_label: int = 0) -> dict[str, float]:
    """ROC AUC of an anomaly score for each fault class against the normal class.

    For fault class ``c``, only the normal and class-``c`` samples are used, with class ``c``
    as the positive one: the AUC is the probability that a random class-``c`` sample scores
    higher than a random normal one.

    Args:
        scores: (N,) anomaly scores, higher = more anomalous.
        labels: (N,) int class indices.
        class_names: Name of each class index.
        normal_label: Index of the normal class.

    Returns:
        ``{class name: AUC}`` for every class present other than the normal one.
    """
    scores, labels = _check_scores(scores, labels, class_names)
    result = {}
    for label, name in enumerate(class_names):
        chosen = (labels == normal_label) | (labels == label)
        if label == normal_label or not (labels == label).any():
            continue
        result[name] = float(roc_auc_score(labels[chosen] == label, scores[chosen]))
    return result


def bootstrap_mean_auc_difference(
    scores_a, scores_b, labels, class_names, n_boot: int = 1000, seed: int = 0,
    normal_label: int = 0,
) -> np.ndarray:
    """Paired bootstrap of the difference in mean per-class ROC AUC between two detectors.

    Both detectors score the same samples, so each bootstrap draw resamples the samples (with
    replacement) once and evaluates both on that draw; the spread of the differences is the
    uncertainty of "detector a beats detector b" on data like this.

    Args:
        scores_a, scores_b: (N,) anomaly scores of the two detectors, higher = more anomalous.
        labels: (N,) int class indices.
        class_names: Name of each class index.
        n_boot: Number of bootstrap draws.
        seed: Seed of the resampling.
        normal_label: Index of the normal class.

    Returns:
        (n_boot,) differences ``mean AUC(a) - mean AUC(b)``, one per draw.
    """
    scores_a, labels = _check_scores(scores_a, labels, class_names)
    scores_b, _ = _check_scores(scores_b, labels, class_names)
    if not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive int, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    differences = np.empty(n_boot)
    for i in range(n_boot):
        index = rng.integers(0, len(labels), len(labels))  # (N,) a resample
        auc_a = roc_auc_per_class(scores_a[index], labels[index], class_names, normal_label)
        auc_b = roc_auc_per_class(scores_b[index], labels[index], class_names, normal_label)
        differences[i] = np.mean(list(auc_a.values())) - np.mean(list(auc_b.values()))
    return differences


def roc_curve_per_class(
    scores, labels, class_names, normal_label: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """ROC curves, ``{class name: (false positive rates, true positive rates)}``.

    Same pairing as :func:`roc_auc_per_class` (each fault class against the normal one).
    """
    scores, labels = _check_scores(scores, labels, class_names)
    result = {}
    for label, name in enumerate(class_names):
        chosen = (labels == normal_label) | (labels == label)
        if label == normal_label or not (labels == label).any():
            continue
        fpr, tpr, _ = roc_curve(labels[chosen] == label, scores[chosen])
        result[name] = (fpr, tpr)
    return result


def pca_reconstruction_error(train, x, n_components: int) -> np.ndarray:
    """The classic anomaly baseline: how badly a PCA of the normal data reconstructs ``x``.

    Each sequence is flattened to a T F vector; PCA with ``n_components`` components is fitted
    on ``train`` and each row of ``x`` is projected and reconstructed.

    Args:
        train: (N, T, F) normal sequences to fit the PCA on.
        x: (M, T, F) sequences to score.
        n_components: Number of principal components kept.

    Returns:
        (M,) mean squared reconstruction error per sequence.
    """
    train, x = _check_pair(train, x)
    if not isinstance(n_components, int) or not 1 <= n_components <= min(
        len(train), train.shape[1] * train.shape[2]
    ):
        raise ValueError(f"n_components must be an int in [1, min(N, T F)], got {n_components!r}")
    train_flat = train.reshape(len(train), -1)  # (N, T F)
    x_flat = x.reshape(len(x), -1)  # (M, T F)
    pca = PCA(n_components=n_components).fit(train_flat)
    rebuilt = pca.inverse_transform(pca.transform(x_flat))  # (M, T F)
    return ((rebuilt - x_flat) ** 2).mean(axis=1)
