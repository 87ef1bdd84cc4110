"""Storage: atomic writes, ``.npz`` arrays and checkpoints, never pickle.

Every file the library writes goes through :func:`atomic_write`-style temp-and-rename, so an
interrupted save never leaves a half-written file where a good one was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["save_npz", "load_npz"]


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Save numeric arrays to ``path`` (``.npz``), atomically and without pickle.

    The file is written next to its destination and renamed into place, so an interrupted
    save never leaves a half-written file where a good one was.

    Raises:
        ValueError: no arrays, or an array of ``object`` dtype (which would need pickle).
    """
    if not arrays:
        raise ValueError("save_npz needs at least one named array")
    for name, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise ValueError(f"array {name!r} has dtype object, which cannot be saved safely")
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"path must end in .npz, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **{name: np.asarray(value) for name, value in arrays.items()})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_npz(path: str | os.PathLike, required: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file with ``allow_pickle=False``.

    Args:
        path: The file.
        required: Names that must be present.

    Raises:
        ValueError: a required array is missing.
    """
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    missing = [name for name in required if name not in arrays]
    if missing:
        raise ValueError(f"{path} lacks the arrays {missing}; it has {sorted(arrays)}")
    return arrays
