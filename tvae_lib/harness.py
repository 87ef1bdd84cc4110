"""The evaluation harness: the TimeGAN scores repeated, with intervals, beside the rows that
calibrate them.

One discriminative score is one training of a small post-hoc GRU, and it moves from run to run
by as much as the differences between generators that papers report. So the harness trains
the post-hoc networks ``runs`` times with different seeds (five, as the Diffusion-TS paper
does) and reports each score as a mean with a 95% interval (Student's t over the runs).

A score means little without its ends of the scale, measured on the same data and protocol;
:func:`reference_rows` adds the rows papers leave out:

- **real vs real**: held-out real sequences in the generator's place. Its discriminative score
  is what a perfect generator would get, and its predictive score is the real-data floor.
- **training set copied**: the training sequences themselves in the generator's place, a
  generator that memorised its data. It scores as well as real data on both scores, which is
  why the protocol needs a memorisation check beside it.
- **noise**: Gaussian noise with the real data's mean and spread at every step and channel, a
  generator that learnt the marginals and nothing about time.

:func:`memorization` is that check: the distance from each generated sequence to its nearest
training sequence, against the same distance for held-out real sequences. A generator that
copies has distances near 0; one that generalises has distances like held-out data's.

Lengths are honoured throughout (padding never reaches a score or a distance), as in
:mod:`tvae_lib.scores`. Shapes: N, M sequences, T steps, F channels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.neighbors import NearestNeighbors

from tvae_lib import checks
from tvae_lib.scores import discriminative_score_sets, predictive_score_sets

__all__ = ["Estimate", "estimate", "repeated_scores", "noise_like", "nearest_distances"]
__all__ += ["score_rows", "memorization", "REFERENCE_ROWS", "reference_sets", "reference_rows"]
__all__ += ["score_table", "PUBLISHED_SINES"]

Lengths = checks.Lengths

#: Published Sines scores (5 channels, 24 steps, TimeGAN protocol; lower is better), as
#: ``{row: {score: (mean, half-width of the 95% interval over 5 runs, or None)}}``, from Table 1
#: of the Diffusion-TS paper (Yuan and Qiao, 2024), which re-ran every model. Its predictive
#: scores are about the same for every model, and its intervals for them are not quoted here.
PUBLISHED_SINES = {
    "TimeGAN (Yoon et al., 2019)": {"discriminative": (0.011, 0.008), "predictive": (0.093, None)},
    "TimeVAE (Desai et al., 2021)": {"discriminative": (0.041, 0.044), "predictive": (0.093, None)},
    "Diffusion-TS (Yuan and Qiao, 2024)": {
        "discriminative": (0.006, 0.007), "predictive": (0.093, None)},
    "real data (Yuan and Qiao, 2024)": {"predictive": (0.094, None)},
}  # fmt: skip


@dataclass(frozen=True)
class Estimate:
    """A score measured ``len(values)`` times: its mean, spread and 95% interval.

    Attributes:
        values: The score of each run.
    """

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        """The mean over the runs."""
        return float(np.mean(self.values))

    @property
    def sd(self) -> float:
        """The sample standard deviation over the runs."""
        return float(np.std(self.values, ddof=1))

    @property
    def ci95(self) -> float:
        """The half-width of the 95% interval of the mean, ``t(0.975, n - 1) * sd / sqrt(n)``."""
        n = len(self.values)
        return float(stats.t.ppf(0.975, n - 1) * self.sd / math.sqrt(n))

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.ci95:.3f}"


def estimate(values) -> Estimate:
    """An :class:`Estimate` from at least two finite numbers."""
    values = tuple(float(v) for v in values)
    if len(values) < 2 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"an interval needs >= 2 finite values, got {values}")
    return Estimate(values)


def repeated_scores(
    real, generated, runs: int = 5, seed: int = 0, *, real_lengths: Lengths = None,
    generated_lengths: Lengths = None, predictive: bool = True,
    discriminative_options: Mapping | None = None, predictive_options: Mapping | None = None,
) -> dict[str, Estimate]:
    """The discriminative (and predictive) score of ``generated``, each trained ``runs`` times.

    Run ``i`` seeds the post-hoc networks (their split, weights and batches) with ``seed + i``;
    the data stay the same, so the interval measures the protocol's own noise. The runs are
    trained together (:func:`~tvae_lib.scores.discriminative_scores`), which on the CPU costs
    much less than training them one after another; :func:`score_rows` does the same for all
    the rows of a table at once.

    Args:
        real: (N, T, F) real sequences.
        generated: (M, T', F) generated sequences (T' = T unless lengths are given).
        runs: Trainings of each post-hoc network, >= 2.
        seed: Seed of the first run.
        real_lengths, generated_lengths: Optional (N,) and (M,) real steps per sequence.
        predictive: Also compute the predictive score (needs F >= 2, values in [0, 1]).
        discriminative_options, predictive_options: Other keyword arguments of
            :func:`~tvae_lib.scores.discriminative_score` and
            :func:`~tvae_lib.scores.predictive_score` (``iterations``, ``hidden_size``, ...).

    Returns:
        ``{"discriminative": Estimate, "predictive": Estimate}`` (the second if asked for).
    """
    return score_rows(real, {"generated": (generated, generated_lengths)}, runs, seed,
                      real_lengths=real_lengths, predictive=predictive,
                      discriminative_options=discriminative_options,
                      predictive_options=predictive_options)["generated"]  # fmt: skip


def score_rows(
    real, rows: Mapping, runs: int = 5, seed: int = 0, *, real_lengths: Lengths = None,
    predictive=True, discriminative_options: Mapping | None = None,
    predictive_options: Mapping | None = None,
) -> dict[str, dict[str, Estimate]]:
    """:func:`repeated_scores` of every row of a table, all their runs trained together.

    Scoring the rows together (:func:`~tvae_lib.scores.discriminative_score_sets`) gives
    each row the numbers :func:`repeated_scores` gives it (up to rounding) in much less time
    than scoring them one after another.

    Args:
        real: (N, T, F) real sequences.
        rows: ``{name: generated}`` or ``{name: (generated, generated_lengths)}``, e.g. a
            generator's samples together with :func:`reference_sets`.
        runs, seed: As in :func:`repeated_scores`.
        real_lengths: Optional (N,) real steps per real sequence.
        predictive: ``True`` (every row), ``False`` (none) or the names of the rows that
            also get the predictive score.
        discriminative_options, predictive_options: As in :func:`repeated_scores`.

    Returns:
        ``{name: {"discriminative": Estimate, "predictive": Estimate}}`` in the rows' order
        (the second where asked for).
    """
    runs = checks.int_in_range("runs", runs, low=2)
    seeds = range(checks.non_negative_int("seed", seed), seed + runs)
    names = list(rows)
    if not names:
        raise ValueError("rows must hold at least one row, got none")
    data = [value if isinstance(value, tuple) else (value, None) for value in rows.values()]
    if predictive is True or predictive is False:
        predictive = names if predictive else []
    unknown = [name for name in predictive if name not in rows]
    if unknown:
        raise ValueError(f"predictive names rows that are not in rows: {unknown}")
    discriminative = discriminative_score_sets(
        real, [d[0] for d in data], seeds, real_lengths=real_lengths,
        generated_lengths=[d[1] for d in data], **dict(discriminative_options or {}))
    table = {name: {"discriminative": estimate(values)}
             for name, values in zip(names, discriminative, strict=True)}  # fmt: skip
    asked = [names.index(name) for name in names if name in predictive]
    if asked:
        errors = predictive_score_sets(
            real, [data[i][0] for i in asked], seeds, real_lengths=real_lengths,
            generated_lengths=[data[i][1] for i in asked], **dict(predictive_options or {}))
        for i, values in zip(asked, errors, strict=True):
            table[names[i]]["predictive"] = estimate(values)
    return table


def noise_like(real, n: int, seed: int = 0, lengths: Lengths = None) -> np.ndarray:
    """``n`` sequences of Gaussian noise with ``real``'s mean and spread at each step and channel.

    Args:
        real: (N, T, F) real sequences, N >= 2.
        n: Number of sequences to draw.
        seed: Seed of the draws.
        lengths: Optional (N,) real steps of ``real``: each step's mean and spread then come
            from the sequences that reach it (a step no sequence reaches stays 0).

    Returns:
        (n, T, F) float32 noise.
    """
    x, lengths = checks.padded_sequences("real", real, lengths)
    n = checks.positive_int("n", n)
    if len(x) < 2:
        raise ValueError(f"real needs >= 2 sequences for a spread, got N={len(x)}")
    reached = (np.arange(x.shape[1]) < lengths[:, None])[..., None]  # (N, T, 1)
    count = reached.sum(axis=0)  # (T, 1)
    mean = x.sum(axis=0) / np.maximum(count, 1)  # (T, F); padding is 0 in x
    var = (np.where(reached, x - mean, 0.0) ** 2).sum(axis=0) / np.maximum(count - 1, 1)
    rng = np.random.default_rng(seed)
    return (mean + np.sqrt(var) * rng.standard_normal((n, *x.shape[1:]))).astype(np.float32)


def nearest_distances(reference, queries, reference_lengths: Lengths = None,
                      query_lengths: Lengths = None) -> np.ndarray:
    """Distance from each query sequence to its nearest reference sequence.

    Sequences are compared as whole vectors, padding set to 0 (so a difference in length
    counts as a difference), and the Euclidean distance is divided by ``sqrt(T F)``: a root
    mean square difference per value.

    Args:
        reference: (N, T, F) sequences to search (e.g. the training set).
        queries: (M, T', F) sequences (T' = T unless lengths are given).
        reference_lengths, query_lengths: Optional real steps per sequence.

    Returns:
        (M,) float64 distances.
    """
    reference, queries, _, _ = checks.real_and_generated(
        reference, queries, reference_lengths, query_lengths)
    steps = max(reference.shape[1], queries.shape[1])
    flat = [np.pad(a, ((0, 0), (0, steps - a.shape[1]), (0, 0))).reshape(len(a), -1)
            for a in (reference, queries)]  # fmt: skip
    distances, _ = NearestNeighbors(n_neighbors=1).fit(flat[0]).kneighbors(flat[1])
    return distances[:, 0] / math.sqrt(flat[0].shape[1])


def memorization(train, generated, held_out, *, train_lengths: Lengths = None,
                 generated_lengths: Lengths = None, held_out_lengths: Lengths = None,
                 copy_distance: float = 1e-6) -> dict[str, float]:
    """Nearest-training-sequence distances of generated data against held-out real data's.

    Returns:
        ``{"generated_median", "held_out_median", "ratio", "copied_share"}``: the median
        distance of each set to its nearest training sequence, their ratio (generated over
        held-out: near 0 for a generator that copies, about 1 or more for one that does not)
        and the share of generated sequences within ``copy_distance`` of a training one.
    """
    generated_d = nearest_distances(train, generated, train_lengths, generated_lengths)
    held_out_d = nearest_distances(train, held_out, train_lengths, held_out_lengths)
    copy_distance = checks.non_negative_float("copy_distance", copy_distance)
    held_out_median = float(np.median(held_out_d))
    return {
        "generated_median": float(np.median(generated_d)),
        "held_out_median": held_out_median,
        "ratio": float(np.median(generated_d)) / held_out_median if held_out_median else math.inf,
        "copied_share": float(np.mean(generated_d <= copy_distance)),
    }


REFERENCE_ROWS = ("real vs real", "training set copied", "noise with the data's mean and spread")
"""The rows :func:`reference_sets` makes, in its order."""


def reference_sets(train, held_out, seed: int = 0, *, train_lengths: Lengths = None,
                   held_out_lengths: Lengths = None, rows=REFERENCE_ROWS) -> dict[str, tuple]:
    """The stand-ins of a score table's calibration rows, to score beside a generator's.

    ``train`` plays the real data; in the generator's place stand held-out real sequences
    (``"real vs real"``), the training sequences themselves (``"training set copied"``) and
    :func:`noise_like` noise of as many sequences as ``train`` (``"noise with the data's
    mean and spread"``). ``held_out`` may hold more or fewer sequences than ``train``: the
    discriminative score then balances its accuracy over the two sets.

    Args:
        train: (N, T, F) the real sequences a generator was trained on.
        held_out: (M, T', F) real sequences it never saw.
        seed: Seed of the noise.
        train_lengths, held_out_lengths: Optional real steps per sequence.
        rows: Which of :data:`REFERENCE_ROWS` to make.

    Returns:
        ``{row: (sequences, lengths)}``, ready for :func:`score_rows`.
    """
    rows = tuple(rows)
    unknown = [row for row in rows if row not in REFERENCE_ROWS]
    if unknown or not rows:
        raise ValueError(f"rows must be one or more of {REFERENCE_ROWS}, got {rows}")
    stand_ins = {
        "real vs real": (held_out, held_out_lengths),
        "training set copied": (train, train_lengths),
    }
    if REFERENCE_ROWS[2] in rows:
        stand_ins[REFERENCE_ROWS[2]] = (noise_like(train, len(train), seed, train_lengths),
                                        train_lengths)  # fmt: skip
    return {row: stand_ins[row] for row in REFERENCE_ROWS if row in rows}


def reference_rows(
    train, held_out, runs: int = 5, seed: int = 0, *, train_lengths: Lengths = None,
    held_out_lengths: Lengths = None, predictive=True, rows=REFERENCE_ROWS, **options,
) -> dict[str, dict[str, Estimate]]:
    """The calibration rows of a score table, on the same protocol as a generator's.

    :func:`score_rows` of the :func:`reference_sets` against ``train``: real vs real, the
    training set copied, and noise with the data's mean and spread.

    Args:
        train: (N, T, F) the real sequences a generator was trained on.
        held_out: (M, T', F) real sequences it never saw.
        runs, seed, predictive: As in :func:`score_rows`.
        train_lengths, held_out_lengths: Optional real steps per sequence.
        rows: Which of :data:`REFERENCE_ROWS` to compute (each costs about as much as a
            generator's row).
        **options: ``discriminative_options`` / ``predictive_options`` for every row.

    Returns:
        ``{row: {"discriminative": Estimate, "predictive": Estimate}}``.
    """
    sets = reference_sets(train, held_out, seed, train_lengths=train_lengths,
                          held_out_lengths=held_out_lengths, rows=rows)  # fmt: skip
    return score_rows(train, sets, runs, seed, real_lengths=train_lengths,
                      predictive=predictive, **options)


def score_table(rows: Mapping[str, Mapping[str, Estimate]],
                published: Mapping[str, Mapping[str, tuple]] | None = None) -> pd.DataFrame:
    """One table of measured and published rows: each score as ``"mean ± half-width"``.

    Args:
        rows: ``{row: {score: Estimate}}`` measured here.
        published: Optional ``{row: {score: (mean, half-width or None)}}``, e.g.
            :data:`PUBLISHED_SINES`; a missing interval shows as the mean alone.

    Returns:
        A DataFrame indexed by row, one column per score, and a column saying where each row
        comes from ("measured here" or "published").
    """
    table = {}
    for name, scores in rows.items():
        table[name] = {score: str(value) for score, value in scores.items()}
        table[name]["source"] = "measured here"
    for name, scores in (published or {}).items():
        table[name] = {score: f"{mean:.3f}" if half is None else f"{mean:.3f} ± {half:.3f}"
                       for score, (mean, half) in scores.items()}  # fmt: skip
        table[name]["source"] = "published"
    return pd.DataFrame.from_dict(table, orient="index").fillna("")
