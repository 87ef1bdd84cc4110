"""One set of argument checks for the whole library.

Every public function validates what it is given through these helpers, so a bad argument
always fails the same way: a ``TypeError`` for the wrong kind of thing, a ``ValueError`` for
the right kind with a wrong value, and a message that names the argument and says what was
expected. ``bool`` is never accepted where a number is meant (``True`` is an ``int`` in Python,
but ``epochs=True`` is a mistake), while NumPy integers and floats are.

Each check returns the value as the plain Python type the caller should use.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np
import torch

__all__ = [
    "positive_int",
    "non_negative_int",
    "int_in_range",
    "finite_float",
    "non_negative_float",
    "positive_float",
    "fraction",
    "one_of",
    "tensor_of_rank",
    "bool_mask",
    "lengths_tensor",
    "as_lengths",
]


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def int_in_range(name: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (either bound may be ``None``)."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be an int in [{lo}, {hi}], got {value}")
    return value


def positive_int(name: str, value: object) -> int:
    """``value`` as an ``int`` >= 1."""
    if _is_int(value) and int(value) < 1:
        raise ValueError(f"{name} must be a positive int, got {int(value)}")
    return int_in_range(name, value, 1)


def non_negative_int(name: str, value: object) -> int:
    """``value`` as an ``int`` >= 0."""
    if _is_int(value) and int(value) < 0:
        raise ValueError(f"{name} must be a non-negative int, got {int(value)}")
    return int_in_range(name, value, 0)


def finite_float(name: str, value: object) -> float:
    """``value`` as a finite ``float``."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def non_negative_float(name: str, value: object) -> float:
    """``value`` as a finite ``float`` >= 0."""
    value = finite_float(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def positive_float(name: str, value: object) -> float:
    """``value`` as a finite ``float`` > 0."""
    value = finite_float(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def fraction(name: str, value: object, *, low_open: bool = False, high_open: bool = True) -> float:
    """``value`` as a ``float`` in [0, 1], each end open or closed as asked (default [0, 1))."""
    value = finite_float(name, value)
    too_low = value <= 0 if low_open else value < 0
    too_high = value >= 1 if high_open else value > 1
    if too_low or too_high:
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return value


def one_of(name: str, value: object, choices: Iterable[object]) -> object:
    """``value`` itself, if it is one of ``choices``."""
    choices = tuple(choices)
    if not isinstance(value, str | int | float | type(None)) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def tensor_of_rank(name: str, x: object, rank: int, shape: str) -> torch.Tensor:
    """``x`` itself, if it is a floating-point tensor with ``rank`` dimensions.

    Args:
        name: The argument's name, for the message.
        x: The value to check.
        rank: The number of dimensions expected.
        shape: How the shape reads in the message, e.g. ``"(B, T, F=3)"``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a tensor of shape {shape}, got {type(x).__name__}")
    if x.dim() != rank:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def bool_mask(name: str, mask: object, shape: tuple[int, ...], what: str = "(B, T)") -> torch.Tensor:
    """``mask`` itself, if it is a bool tensor of exactly ``shape`` (no broadcasting)."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise TypeError(f"{name} must be a bool tensor (True at real steps), got {got}")
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {what}={tuple(shape)}, got {tuple(mask.shape)}")
    return mask


def lengths_tensor(name: str, lengths: object, batch: int, max_len: int) -> torch.Tensor:
    """``lengths`` as an int64 tensor of shape (batch,), every entry in [1, max_len]."""
    if isinstance(lengths, np.ndarray | list | tuple):
        lengths = np.asarray(lengths)
        if lengths.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integers, got dtype {lengths.dtype}")
        lengths = torch.from_numpy(lengths.astype(np.int64))
    if not isinstance(lengths, torch.Tensor):
        raise TypeError(f"{name} must be a tensor or array of shape (N,), got {type(lengths).__name__}")
    if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
        raise TypeError(f"{name} must hold integers, got dtype {lengths.dtype}")
    if tuple(lengths.shape) != (batch,):
        raise ValueError(f"{name} must have shape (N={batch},), got {tuple(lengths.shape)}")
    lengths = lengths.to(torch.int64)
    if batch and (int(lengths.min()) < 1 or int(lengths.max()) > max_len):
        raise ValueError(
            f"{name} must lie in [1, T={max_len}], got min {int(lengths.min())} and max "
            f"{int(lengths.max())}"
        )
    return lengths


def as_lengths(lengths: object, n: int, max_len: int, name: str = "lengths") -> np.ndarray:
    """Optional lengths as an (N,) int64 NumPy array; ``None`` means every sequence is full."""
    if lengths is None:
        return np.full(n, max_len, dtype=np.int64)
    return lengths_tensor(name, lengths, n, max_len).cpu().numpy()
