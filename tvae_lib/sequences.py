"""Variable-length multivariate sequences: validation, scaling, padding and batching.

A sequence is a float array of shape (T_i, F): T_i time steps of F channels. A padded batch
is (B, T, F) with the true lengths (B,) and a mask (B, T) that is ``True`` at real steps (the
convention of :mod:`tvae_lib.masks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from tvae_lib.checks import as_lengths, finite_float, non_negative_int, positive_int
from tvae_lib.masks import padding_mask

__all__ = [
    "PaddedBatch",
    "check_sequences",
    "pad_sequences",
    "SequenceDataset",
    "collate_padded",
    "SequenceScaler",
    "RandomCrops",
]


class PaddedBatch(NamedTuple):
    """A batch of padded sequences.

    Attributes:
        x: (B, T, F) float, padded with the dataset's ``pad_value``.
        lengths: (B,) int64 true lengths.
        mask: (B, T) bool, ``True`` at real steps.
        labels: (B,) int64 labels, or ``None`` when the dataset has none.
    """

    x: torch.Tensor
    lengths: torch.Tensor
    mask: torch.Tensor
    labels: torch.Tensor | None


def check_sequences(sequences: Sequence[np.ndarray], name: str = "sequences") -> list[np.ndarray]:
    """Validate a list of (T_i, F) arrays and return them as float32 arrays.

    Raises:
        ValueError: empty input, a sequence that is not 2-D or has no steps, channel counts
            that differ, non-numeric dtypes, or NaN/inf values; each message names the
            offending sequence.
    """
    if isinstance(sequences, np.ndarray) and sequences.dtype != object:
        if sequences.ndim == 2:
            raise ValueError(
                f"{name} must be a list of (T_i, F) arrays or one (N, T, F) array, got a 2-D "
                f"array of shape {sequences.shape}; wrap a single sequence in a list"
            )
        sequences = list(sequences)
    if len(sequences) == 0:
        raise ValueError(f"{name} is empty: expected at least one (T_i, F) array")
    checked = []
    n_features = None
    for i, seq in enumerate(sequences):
        arr = np.asarray(seq)
        if arr.dtype.kind not in "fiub":
            raise ValueError(f"{name}[{i}] must be numeric, got dtype {arr.dtype}")
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(
                f"{name}[{i}] must have shape (T_i, F) with T_i, F >= 1, got {arr.shape}"
            )
        if n_features is None:
            n_features = arr.shape[1]
        elif arr.shape[1] != n_features:
            raise ValueError(
                f"{name}[{i}] has {arr.shape[1]} channels but {name}[0] has {n_features}"
            )
        with np.errstate(over="ignore"):  # checked just below: 1e300 becomes inf in float32
            arr = arr.astype(np.float32, copy=False)
        if not np.isfinite(arr).all():
            raise ValueError(
                f"{name}[{i}] contains NaN or inf values (or values beyond float32's range, "
                "about 3.4e38)"
            )
        checked.append(arr)
    return checked


def pad_sequences(
    sequences: Sequence[np.ndarray],
    pad_value: float = 0.0,
    max_len: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Stack (T_i, F) arrays into one padded (N, T, F) array.

    Args:
        sequences: The sequences.
        pad_value: Value written after each sequence's end.
        max_len: Padded length T; defaults to the longest sequence. Longer sequences raise.

    Returns:
        ``(x, lengths)``: x (N, T, F) float32, lengths (N,) int64.
    """
    sequences = check_sequences(sequences)
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    max_len = int(lengths.max()) if max_len is None else max_len
    if lengths.max() > max_len:
        raise ValueError(
            f"a sequence of length {int(lengths.max())} does not fit max_len={max_len}"
        )
    x = np.full((len(sequences), max_len, sequences[0].shape[1]), pad_value, dtype=np.float32)
    for i, seq in enumerate(sequences):
        x[i, : len(seq)] = seq
    return x, lengths


class SequenceDataset(Dataset):
    """A dataset of variable-length multivariate sequences, for :func:`collate_padded`.

    Args:
        sequences: N arrays of shape (T_i, F); any number of channels and any lengths.
        labels: Optional N integer labels.
        pad_value: The value :func:`collate_padded` pads with.

    Each item is ``(x, label)`` with x a (T_i, F) float32 tensor (label ``-1`` without labels).
    """

    def __init__(
        self,
        sequences: Sequence[np.ndarray],
        labels: Sequence[int] | np.ndarray | None = None,
        pad_value: float = 0.0,
    ):
        self.sequences = [torch.from_numpy(s.copy()) for s in check_sequences(sequences)]
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != (len(self.sequences),) or labels.dtype.kind not in "iu":
                raise ValueError(
                    f"labels must be {len(self.sequences)} integers (shape "
                    f"({len(self.sequences)},)), got dtype {labels.dtype} and shape "
                    f"{labels.shape}"
                )
            self.labels = torch.as_tensor(labels, dtype=torch.int64)
        else:
            self.labels = None
        self.pad_value = finite_float("pad_value", pad_value)
        self.n_features = self.sequences[0].shape[1]

    @classmethod
    def from_padded(
        cls,
        x: np.ndarray,
        lengths: np.ndarray,
        labels: np.ndarray | None = None,
        pad_value: float = 0.0,
    ) -> SequenceDataset:
        """Build from a padded (N, T, F) array and its (N,) true lengths."""
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"x must have shape (N, T, F), got {x.shape}")
        lengths = as_lengths(lengths, len(x), x.shape[1])  # each in [1, T]
        return cls([x[i, : lengths[i]] for i in range(len(x))], labels, pad_value)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        label = -1 if self.labels is None else int(self.labels[index])
        return self.sequences[index], label

    def collate(self, batch: list[tuple[torch.Tensor, int]]) -> PaddedBatch:
        """:func:`collate_padded` with this dataset's ``pad_value``; use as ``collate_fn``."""
        return collate_padded(batch, pad_value=self.pad_value, has_labels=self.labels is not None)


class RandomCrops(SequenceDataset):
    """Random windows of each sequence, drawn afresh every time an item is read.

    With few series (a few dozen recordings), training on random crops gives the model many
    different sequences per epoch and variable-length batches, so it learns to handle any
    length up to ``max_len`` and the padding masks are at work.

    Args:
        sequences: N arrays of shape (T_i, F).
        labels: Optional N integer labels (each crop keeps its sequence's label).
        min_len: Shortest crop (at most each sequence's length; shorter sequences are used whole).
        max_len: Longest crop (default: the whole sequence).
        crops_per_sequence: Items per sequence in one pass (an epoch).
        seed: Seeds the crop draws (reproducible with a single-process ``DataLoader``).
        pad_value: The value ``collate`` pads with.
    """

    def __init__(
        self,
        sequences: Sequence[np.ndarray],
        labels: Sequence[int] | np.ndarray | None = None,
        *,
        min_len: int,
        max_len: int | None = None,
        crops_per_sequence: int = 1,
        seed: int = 0,
        pad_value: float = 0.0,
    ):
        super().__init__(sequences, labels, pad_value)
        self.min_len = positive_int("min_len", min_len)
        self.max_len = None if max_len is None else positive_int("max_len", max_len)
        if self.max_len is not None and self.max_len < self.min_len:
            raise ValueError(f"max_len must be >= min_len={min_len}, got {max_len}")
        self.crops_per_sequence = positive_int("crops_per_sequence", crops_per_sequence)
        self.rng = np.random.default_rng(non_negative_int("seed", seed))

    def __len__(self) -> int:
        return len(self.sequences) * self.crops_per_sequence

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sequence, label = super().__getitem__(index // self.crops_per_sequence)
        total = len(sequence)
        longest = total if self.max_len is None else min(self.max_len, total)
        length = int(self.rng.integers(min(self.min_len, longest), longest + 1))
        start = int(self.rng.integers(0, total - length + 1))
        return sequence[start : start + length], label


def collate_padded(
    batch: list[tuple[torch.Tensor, int]],
    pad_value: float = 0.0,
    has_labels: bool = True,
) -> PaddedBatch:
    """Pad a list of ``(x (T_i, F), label)`` items to the batch's longest sequence.

    Returns:
        A :class:`PaddedBatch` with x (B, T, F), lengths (B,), mask (B, T), labels (B,).
    """
    if len(batch) == 0:
        raise ValueError("collate_padded got an empty batch")
    sequences = [item[0] for item in batch]
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    x = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True, padding_value=pad_value)
    labels = torch.tensor([item[1] for item in batch], dtype=torch.int64) if has_labels else None
    return PaddedBatch(x, lengths, padding_mask(lengths, x.shape[1]), labels)


class SequenceScaler:
    """Standardise each channel with the mean and spread of the training set's *real* steps.

    A Transformer-VAE's β and learning rate assume channels of unit scale, so scale first.
    Fitted on a list of (T_i, F) arrays (or one (N, T, F) array with its lengths), the
    statistics count every real step once and never a padded one. The same as scikit-learn's
    ``StandardScaler`` on the stacked real steps (tested against it); it round-trips with
    :meth:`inverse_transform`.

    Attributes:
        mean_: (F,) per-channel mean, set by :meth:`fit`.
        scale_: (F,) per-channel standard deviation (1 where a channel is constant), set by
            :meth:`fit`.
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    @staticmethod
    def _split(sequences, lengths) -> list[np.ndarray]:
        if lengths is not None:
            x = np.asarray(sequences)
            if x.ndim != 3:
                raise ValueError(f"with lengths, sequences must be one (N, T, F) array, got {x.shape}")
            lengths = as_lengths(lengths, len(x), x.shape[1])
            sequences = [x[i, : lengths[i]] for i in range(len(x))]
        return check_sequences(sequences)

    def fit(self, sequences, lengths=None) -> SequenceScaler:
        """Learn the per-channel mean and standard deviation of the real steps."""
        steps = np.concatenate(self._split(sequences, lengths)).astype(np.float64)  # (sum T_i, F)
        self.mean_ = steps.mean(axis=0)
        scale = steps.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        return self

    def _check_fitted(self, n_features: int) -> None:
        if self.mean_ is None:
            raise ValueError("this SequenceScaler is not fitted yet: call fit() first")
        if n_features != len(self.mean_):
            raise ValueError(f"expected sequences with F={len(self.mean_)} channels, got {n_features}")

    def transform(self, sequences, lengths=None) -> list[np.ndarray] | np.ndarray:
        """Scaled copies: a list for a list; one (N, T, F) array for an array (padding kept)."""
        if lengths is None and not isinstance(sequences, np.ndarray):
            sequences = check_sequences(sequences)
            self._check_fitted(sequences[0].shape[1])
            return [((s - self.mean_) / self.scale_).astype(np.float32) for s in sequences]
        x = np.asarray(sequences, dtype=np.float32)
        self._check_fitted(x.shape[-1])
        scaled = ((x - self.mean_) / self.scale_).astype(np.float32)
        if lengths is not None:  # padding keeps its value
            real = padding_mask(torch.from_numpy(as_lengths(lengths, len(x), x.shape[1])),
                                x.shape[1]).numpy()  # fmt: skip
            scaled = np.where(real[..., None], scaled, x)
        return scaled

    def inverse_transform(self, sequences, lengths=None) -> list[np.ndarray] | np.ndarray:
        """Back to the data's own units (accepts tensors too, e.g. generated sequences)."""
        if isinstance(sequences, torch.Tensor):
            sequences = sequences.detach().cpu().numpy()
        if lengths is None and not isinstance(sequences, np.ndarray):
            self._check_fitted(np.asarray(sequences[0]).shape[-1])
            return [(np.asarray(s) * self.scale_ + self.mean_).astype(np.float32) for s in sequences]
        x = np.asarray(sequences, dtype=np.float32)
        self._check_fitted(x.shape[-1])
        restored = (x * self.scale_ + self.mean_).astype(np.float32)
        if lengths is not None:
            real = padding_mask(torch.from_numpy(as_lengths(lengths, len(x), x.shape[1])),
                                x.shape[1]).numpy()  # fmt: skip
            restored = np.where(real[..., None], restored, x)
        return restored
