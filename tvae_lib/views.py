"""Two-dimensional views of real vs generated sequences, as the TimeGAN paper plots them.

Yoon et al. (2019) average each sequence over its channels into one length-T vector and look at
the real and the generated vectors together in two dimensions: PCA fitted on the real vectors,
or t-SNE run on both sets at once. Where the generated points cover the real ones, the
generator has the data's spread; a tight cluster inside them is a generator that found the mean.

Padded sets are compared on their real steps: with ``real_lengths`` and ``generated_lengths``
each sequence's real part is resampled to the real set's T points, so the view compares shapes,
not durations, and never sees padding (checked by :func:`tvae_lib.checks.padded_sequences`).
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from tvae_lib import checks

__all__ = ["embed_real_and_generated"]


def _channel_means(x: np.ndarray, lengths: np.ndarray, n_points: int) -> np.ndarray:
    """(n, T, F) -> (n, n_points): each real part averaged over channels, resampled if need be."""
    means = x.mean(axis=2)  # (n, T)
    if x.shape[1] == n_points and (lengths == n_points).all():
        return means
    out = np.empty((len(x), n_points), dtype=np.float32)
    for row, (mean, length) in enumerate(zip(means, lengths, strict=True)):
        where = np.linspace(0, length - 1, n_points)  # (n_points,) on the real steps' scale
        out[row] = np.interp(where, np.arange(length), mean[:length])
    return out


def embed_real_and_generated(
    real, generated, method: str = "pca", n_samples: int = 1000, perplexity: float = 40.0,
    seed: int = 0, *, real_lengths: checks.Lengths = None, generated_lengths: checks.Lengths = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-dimensional views of real and generated sequences, as in the TimeGAN paper.

    Up to ``n_samples`` sequences of each set are drawn; each is averaged over its channels
    into a length-T vector. PCA is fitted on the real vectors and applied to both; t-SNE is
    run on the two sets together. With lengths, each sequence's real part (L steps averaged
    over channels) is linearly resampled to the real set's T points (``np.interp``), so
    sequences of every length become comparable vectors that never include padding: the view
    then compares shapes, not durations.

    Args:
        real: (N, T, F) real sequences.
        generated: (M, T', F) generated sequences; T' = T unless lengths are given.
        method: ``"pca"`` or ``"tsne"``.
        n_samples: Sequences drawn from each set (at least 2 must be available).
        perplexity: t-SNE's perplexity.
        seed: Seeds the draw and t-SNE.
        real_lengths: (N,) ints in [1, T], real steps per sequence; ``None``: all T.
        generated_lengths: (M,) ints in [1, T']; ``None``: all T'.

    Returns:
        ``(real_2d, generated_2d)``, each of shape (n, 2) with n = min(n_samples, N, M).

    Raises:
        TypeError, ValueError: A bad argument; the message names it.
    """
    real, generated, real_lengths, generated_lengths = checks.real_and_generated(
        real, generated, real_lengths, generated_lengths)
    method = checks.one_of("method", method, ("pca", "tsne"))
    n = min(checks.positive_int("n_samples", n_samples), len(real), len(generated))
    perplexity = checks.positive_float("perplexity", perplexity)
    seed = checks.non_negative_int("seed", seed)
    if n < 2:
        raise ValueError(f"a 2-D view needs >= 2 sequences of each set, got n_samples="
                         f"{n_samples}, N={len(real)}, M={len(generated)}")
    rng = np.random.default_rng(seed)
    real_pick, gen_pick = rng.permutation(len(real))[:n], rng.permutation(len(generated))[:n]
    real_flat = _channel_means(real[real_pick], real_lengths[real_pick], real.shape[1])  # (n, T)
    gen_flat = _channel_means(generated[gen_pick], generated_lengths[gen_pick], real.shape[1])
    if method == "pca":
        pca = PCA(n_components=2).fit(real_flat)
        return pca.transform(real_flat), pca.transform(gen_flat)
    tsne = TSNE(n_components=2, perplexity=min(perplexity, (2 * n - 1) / 3), max_iter=300,
                init="pca", random_state=seed)
    both = tsne.fit_transform(np.concatenate([real_flat, gen_flat]))  # (2 n, 2)
    return both[:n], both[n:]
