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
from collections.abc import Iterable, Sequence

import numpy as np
import torch

Lengths = np.ndarray | torch.Tensor | None
"""(N,) real steps per sequence, as an array or a tensor; ``None``: every step is real."""

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
    "sequence_length",
    "sequence_batch",
    "padded_sequences",
    "real_and_generated",
    "names",
    "class_labels",
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


def sequence_length(length: object, max_len: int) -> int:
    """A number of steps T as an ``int`` in ``[1, max_len]`` (a model's positional table)."""
    if not _is_int(length):
        raise TypeError(f"length must be an int, got {length!r}")
    if not 1 <= int(length) <= max_len:
        raise ValueError(
            f"sequence length T={length} is outside [1, max_len={max_len}]; "
            "build the model with a larger TVAEConfig.max_len"
        )
    return int(length)


def sequence_batch(
    name: str, x: object, mask: object, n_features: int, max_len: int, dtype: torch.dtype
) -> torch.Tensor:
    """A batch ``x`` (B, T, F) of ``dtype`` and its optional (B, T) ``mask``, for a model.

    Returns ``x`` with its padded steps set to zero (a copy), so that whatever padding held
    (NaN, inf, 1e20) cannot reach a real step; a non-finite value at a real step is an error.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must have shape (B, T, F={n_features}), got {got}")
    if x.shape[2] != n_features:
        raise ValueError(f"{name} must have F={n_features} channels, got shape {tuple(x.shape)}")
    if x.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one sequence, got shape {tuple(x.shape)}")
    if x.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the model's weights are {dtype}: convert one of "
            f"them, e.g. {name}.to({dtype})"
        )
    sequence_length(x.shape[1], max_len)
    if mask is not None:
        bool_mask("mask", mask, tuple(x.shape[:2]))
        if not mask[:, 0].all():
            raise ValueError("mask must mark at least the first step of every sequence")
        x = x.masked_fill(~mask[..., None], 0.0)  # padding holds zeros from here on
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or inf at real steps (mask them out or clean the data)")
    return x


def padded_sequences(
    name: str, x: object, lengths: Lengths = None, lengths_name: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Check one padded set of sequences and blank its padding: how data enters every score.

    Args:
        name: The argument's name, for messages.
        x: (N, T, F) array or tensor.
        lengths: (N,) ints in [1, T], real steps per sequence; ``None``: all T.
        lengths_name: The lengths argument's name, for messages; ``None``: ``{name}_lengths``.

    Returns:
        ``(x, lengths)``: (N, T, F) float32 with padded steps set to 0 (``x`` itself when
        nothing is padded), and (N,) int64.

    Raises:
        TypeError, ValueError: A bad ``x`` or ``lengths``, or a non-finite value at a real step.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array or tensor of shape (N, T, F), got {type(x)}")
    if x.ndim != 3 or min(x.shape) < 1:
        raise ValueError(f"{name} must have shape (N, T, F) with N, T, F >= 1, got {x.shape}")
    x = x.astype(np.float32, copy=False)
    lengths = as_lengths(lengths, len(x), x.shape[1], lengths_name or f"{name}_lengths")
    real = np.arange(x.shape[1]) < lengths[:, None]  # (N, T)
    bad = ~np.isfinite(x).all(axis=2) & real  # (N, T)
    if bad.any():
        sequence, step = np.argwhere(bad)[0]
        raise ValueError(f"{name} has a non-finite value at a real step (sequence {sequence}, "
                         f"step {step})")
    if not real.all():
        x = np.where(real[..., None], x, np.float32(0))  # where, not *: NaN * 0 is NaN
    return x, lengths


def real_and_generated(
    real: object, generated: object, real_lengths: Lengths, generated_lengths: Lengths
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two sets checked by :func:`padded_sequences`: they share F, and T unless lengths were given.

    Returns ``(real, generated, real_lengths, generated_lengths)`` as in :func:`padded_sequences`.
    """
    real, real_lengths_ = padded_sequences("real", real, real_lengths)
    generated, generated_lengths_ = padded_sequences("generated", generated, generated_lengths)
    no_lengths = real_lengths is None and generated_lengths is None
    if real.shape[2] != generated.shape[2] or (no_lengths and real.shape[1] != generated.shape[1]):
        raise ValueError(f"real and generated must share {'(T, F)' if no_lengths else 'F'}, got "
                         f"(T, F) = {real.shape[1:]} and {generated.shape[1:]}")
    return real, generated, real_lengths_, generated_lengths_


def names(name: str, names: object, count: int | None = None) -> tuple[str, ...]:
    """``names`` as a tuple of strings (``count`` of them, if given)."""
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(f"{name} must be a sequence of strings, got {type(names).__name__}")
    if count is not None and len(names) != count:
        raise ValueError(f"{name} must hold {count} names, got {len(names)}: {tuple(names)}")
    return tuple(str(item) for item in names)


def class_labels(
    labels: object, n: int, class_names: object
) -> tuple[np.ndarray, tuple[str, ...]]:
    """``labels`` as (N,) integer class indices, each naming an entry of ``class_names``."""
    class_names = names("class_names", class_names)
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels) if isinstance(labels, list | tuple) else labels
    if not isinstance(labels, np.ndarray) or labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class indices, got {type(labels).__name__}")
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape (N={n},), got {labels.shape}")
    if n and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(f"labels must lie in [0, {len(class_names) - 1}] (one per class_names "
                         f"entry), got {labels.min()} to {labels.max()}")
    return labels, class_names
