"""A simulated electric door: the book's multivariate time series.

One *cycle* is a door opening, holding and closing, sampled at 10 Hz in three channels:

- ``position``: how far the door is open, 0 (closed) to 1 (fully open);
- ``current``: the motor current in amperes;
- ``speed``: the door's speed in door-widths per second (positive while opening).

Four classes of cycle: ``normal``; ``obstruction`` (something blocks the closing door: it
stalls, the current spikes, and the door reverses back open); ``high friction`` (a worn rail:
slower travel and a higher current while moving); ``sensor fault`` (the position sensor sticks
or drops out while the motor, current and speed stay normal).

Shapes: N cycles, T steps, F = 3 channels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset

from tvae_lib.checks import positive_int
from tvae_lib.sequences import SequenceDataset
from tvae_lib.storage import load_npz, save_npz

__all__ = [
    "CHANNELS",
    "CLASS_NAMES",
    "SAMPLE_RATE_HZ",
    "DoorCycles",
    "make_door_cycles",
    "train_val_split",
    "load_door_cycles",
    "door_loaders",
]

CHANNELS = ("position", "current", "speed")
CHANNEL_UNITS = ("fraction open", "A", "widths/s")
#: The four kinds of cycle, in the order of their integer labels 0-3.
CLASS_NAMES = ("normal", "obstruction", "high friction", "sensor fault")
SAMPLE_RATE_HZ = 10
N_CYCLES, N_TRAIN, N_VAL, SEQ_LEN = 2570, 1798, 772, 109
PAD_VALUE = -0.1  # the value the post "[Pytorch] Transformer-VAE 구현" pads with


@dataclass(frozen=True)
class DoorCycles:
    """A set of door cycles, padded to a common length.

    Attributes:
        x: (N, T, F) float32 cycles; steps past a cycle's length hold ``pad_value``.
        labels: (N,) int64 class indices into :data:`CLASS_NAMES`.
        lengths: (N,) int64 true lengths (all T in the fixed-length mode).
        pad_value: The padding value.
    """

    x: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray
    pad_value: float = PAD_VALUE

    def __post_init__(self) -> None:
        x, labels, lengths = self.x, self.labels, self.lengths
        if x.ndim != 3 or x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
            raise ValueError(f"x must have shape (N, T, F) with N, T, F >= 1, got {x.shape}")
        if x.dtype != np.float32:
            raise ValueError(f"x must be float32, got {x.dtype}")
        if not np.isfinite(x).all():
            raise ValueError("x contains NaN or inf values")
        for name, arr in (("labels", labels), ("lengths", lengths)):
            if arr.shape != (x.shape[0],) or arr.dtype != np.int64:
                raise ValueError(
                    f"{name} must be int64 of shape ({x.shape[0]},), got {arr.dtype} {arr.shape}"
                )
        if lengths.min() < 1 or lengths.max() > x.shape[1]:
            raise ValueError(f"lengths must lie in [1, {x.shape[1]}]")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def n_features(self) -> int:
        return self.x.shape[2]

    def subset(self, index: np.ndarray) -> DoorCycles:
        """The cycles at ``index`` (an int array or a boolean mask)."""
        return DoorCycles(self.x[index], self.labels[index], self.lengths[index], self.pad_value)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x (N, T, F) float32, labels (N,) int64, lengths (N,) int64)`` as tensors."""
        return (
            torch.from_numpy(self.x),
            torch.from_numpy(self.labels),
            torch.from_numpy(self.lengths),
        )

    def dataset(self) -> SequenceDataset:
        """A :class:`~tvae_lib.sequences.SequenceDataset` of the unpadded cycles."""
        return SequenceDataset.from_padded(self.x, self.lengths, self.labels, self.pad_value)

    def save(self, path: str | os.PathLike) -> None:
        """Save as ``.npz`` (no pickle, written atomically)."""
        save_npz(
            path,
            x=self.x,
            labels=self.labels,
            lengths=self.lengths,
            pad_value=np.float32(self.pad_value),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> DoorCycles:
        """Load a file written by :meth:`save`; malformed contents raise ``ValueError``."""
        arrays = load_npz(path, required=("x", "labels", "lengths", "pad_value"))
        return cls(arrays["x"], arrays["labels"], arrays["lengths"], float(arrays["pad_value"]))


def _min_jerk(n: int) -> np.ndarray:
    """n samples of the minimum-jerk profile from 0 to 1 (zero speed and acceleration at ends)."""
    u = np.linspace(0.0, 1.0, n)
    return u**3 * (10.0 - 15.0 * u + 6.0 * u**2)


def _one_cycle(
    rng: np.random.Generator, label: int, seq_len: int, variable_length: bool
) -> np.ndarray:
    """Simulate one cycle: returns (L, 3) with L <= seq_len."""
    slow = rng.uniform(1.25, 1.45) if label == 2 else rng.uniform(0.95, 1.05)
    idle = int(rng.integers(3, 9))
    n_open = int(round(rng.uniform(17, 22) * slow))
    hold = int(rng.integers(10, 31) if variable_length else rng.integers(18, 27))
    n_close = int(round(rng.uniform(19, 24) * slow))
    open_level = rng.uniform(0.96, 1.0)

    pieces = [np.zeros(idle), open_level * _min_jerk(n_open), np.full(hold, open_level)]
    if label == 1:  # obstruction: stall part-way through closing, then reverse open
        stop_at = int(n_close * rng.uniform(0.3, 0.7))
        closing = open_level * (1.0 - _min_jerk(n_close))[:stop_at]
        stall = int(rng.integers(4, 8))
        reopen_from = closing[-1]
        n_reopen = int(rng.integers(8, 12))
        reopen = reopen_from + (open_level - reopen_from) * _min_jerk(n_reopen)
        pieces += [closing, np.full(stall, reopen_from), reopen, np.full(12, open_level)]
    else:
        pieces += [open_level * (1.0 - _min_jerk(n_close))]
        pieces += [np.zeros(int(rng.integers(3, 7)) if variable_length else seq_len)]
    position = np.concatenate(pieces)[:seq_len]
    length = len(position)
    if not variable_length and length < seq_len:  # hold the last state to the full length
        position = np.concatenate([position, np.full(seq_len - length, position[-1])])

    speed = np.gradient(position) * SAMPLE_RATE_HZ  # widths per second
    accel = np.gradient(speed)
    moving = np.abs(speed) > 0.02
    friction = rng.uniform(0.45, 0.6) if label == 2 else rng.uniform(0.12, 0.2)
    current = 0.05 + rng.uniform(0.5, 0.6) * np.abs(speed) + 1.2 * np.abs(accel) + friction * moving
    if label == 1:  # the motor pushes against the obstacle: a stall current spike
        start = idle + n_open + hold + stop_at
        ramp = np.linspace(0.6, 1.0, stall) * rng.uniform(1.6, 2.0)
        current[start : start + stall] = np.maximum(current[start : start + stall], ramp)

    position = position + rng.normal(0.0, 0.01, position.shape)
    current = current + rng.normal(0.0, 0.03, current.shape)
    speed = speed + rng.normal(0.0, 0.02, speed.shape)
    if label == 3:  # the position sensor sticks at a stale value, or drops out to zero
        start = int(rng.integers(idle, idle + n_open + hold))
        width = int(rng.integers(10, 26))
        if rng.random() < 0.5:
            position[start : start + width] = position[start]
        else:
            dropouts = rng.choice(np.arange(idle, len(position)), size=5, replace=False)
            position[dropouts] = 0.0
    return np.stack([position, current, speed], axis=1)


def make_door_cycles(
    n_cycles: int = N_CYCLES,
    seq_len: int = SEQ_LEN,
    *,
    variable_length: bool = False,
    class_fractions: tuple[float, ...] = (0.4, 0.2, 0.2, 0.2),
    pad_value: float = PAD_VALUE,
    seed: int = 0,
) -> DoorCycles:
    """Simulate ``n_cycles`` door cycles, deterministically for a given ``seed``.

    Args:
        n_cycles: Number of cycles N.
        seq_len: Padded length T, at least 80. A cycle longer than T is cut at T: the
            slowest possible cycle (high friction) takes up to 101 steps at fixed length and
            at most 111 with variable lengths, so the default of 109 leaves all but the
            rarest variable-length cycles whole.
        variable_length: If ``True``, each cycle ends a few steps after the door closes
            (or, for an obstruction, after it has reopened), so lengths differ; the rest is
            padded with ``pad_value``. If ``False``, every cycle fills all T steps.
        class_fractions: Share of each class in :data:`CLASS_NAMES` order (sums to 1).
        pad_value: Padding value in the variable-length mode.
        seed: Seed of the generator.

    Returns:
        The cycles, in shuffled class order.
    """
    positive_int("n_cycles", n_cycles)
    if not isinstance(seq_len, int) or seq_len < 80:
        raise ValueError(
            f"seq_len must be an int >= 80, got {seq_len!r}"
        )
    fractions = np.asarray(class_fractions, dtype=float)
    if (
        fractions.shape != (len(CLASS_NAMES),)
        or (fractions < 0).any()
        or abs(fractions.sum() - 1) > 1e-6
    ):
        raise ValueError(
            f"class_fractions must be {len(CLASS_NAMES)} non-negative numbers summing to 1, "
            f"got {class_fractions!r}"
        )
    rng = np.random.default_rng(seed)
    counts = np.floor(fractions * n_cycles).astype(int)
    counts[0] += n_cycles - counts.sum()  # rounding remainder goes to the normal class
    labels = rng.permutation(np.repeat(np.arange(len(CLASS_NAMES)), counts)).astype(np.int64)
    x = np.full((n_cycles, seq_len, len(CHANNELS)), pad_value, dtype=np.float32)
    lengths = np.empty(n_cycles, dtype=np.int64)
    for i, label in enumerate(labels):
        cycle = _one_cycle(rng, int(label), seq_len, variable_length)
        x[i, : len(cycle)] = cycle
        lengths[i] = len(cycle)
    return DoorCycles(x, labels, lengths, float(pad_value))


def train_val_split(
    data: DoorCycles, n_val: int = N_VAL, seed: int = 0
) -> tuple[DoorCycles, DoorCycles]:
    """Split stratified by class into training and validation cycles (default 1,798 / 772)."""
    if not 0 < n_val < len(data):
        raise ValueError(f"n_val must lie in [1, {len(data) - 1}], got {n_val}")
    train_idx, val_idx = train_test_split(
        np.arange(len(data)), test_size=n_val, random_state=seed, stratify=data.labels
    )
    return data.subset(np.sort(train_idx)), data.subset(np.sort(val_idx))


def load_door_cycles(variable_length: bool = False, seed: int = 0) -> tuple[DoorCycles, DoorCycles]:
    """The book's standard data: 2,570 cycles of 109 steps, split 1,798 / 772."""
    data = make_door_cycles(variable_length=variable_length, seed=seed)
    return train_val_split(data, seed=seed)


def door_loaders(
    variable_length: bool = False, batch_size: int = 64, generator: torch.Generator | None = None,
    normal_only: bool = False,
) -> tuple[DataLoader, DataLoader]:
    """Training (shuffled) and validation loaders over the standard door cycles.

    Fixed-length batches are ``(x, labels)`` tuples; variable-length ones are
    :class:`~tvae_lib.sequences.PaddedBatch` with their masks. With ``normal_only`` both
    loaders hold the normal cycles (label 0) only: the data of a model of normal operation.
    """
    train, val = load_door_cycles(variable_length=variable_length)
    if normal_only:
        train, val = train.subset(train.labels == 0), val.subset(val.labels == 0)
    if not variable_length:
        (x_train, y_train, _), (x_val, y_val, _) = train.tensors(), val.tensors()
        return (
            DataLoader(TensorDataset(x_train, y_train), batch_size, shuffle=True,
                       generator=generator),
            DataLoader(TensorDataset(x_val, y_val), batch_size=256),
        )  # fmt: skip
    train_set, val_set = train.dataset(), val.dataset()
    return (
        DataLoader(train_set, batch_size, shuffle=True, generator=generator,
                   collate_fn=train_set.collate),
        DataLoader(val_set, batch_size=256, collate_fn=val_set.collate),
    )  # fmt: skip
