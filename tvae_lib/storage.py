"""Storage: atomic writes and ``.npz`` arrays, never pickle (checkpoints: :mod:`tvae_lib.checkpoints`).

A tutorial's data and trained weights outlive the session that made them, so this module is
careful in three ways. Every write goes to a temporary file beside its destination and is
renamed into place (:func:`atomic_write`): an interrupted save, even by Ctrl-C, never leaves a
half-written file where a good one was. Nothing is unpickled: arrays load with
``allow_pickle=False`` and checkpoints with ``torch.load(..., weights_only=True)``, because
unpickling a file runs whatever code its author chose. And a checkpoint holds only tensors and
JSON text, plus a SHA-256 of both, so a damaged or foreign file fails loudly, with a message
naming the file, instead of loading wrong weights silently.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import numpy as np

__all__ = ["atomic_write", "check_zip", "save_npz", "load_npz"]

ZIP_MAGIC = b"PK\x03\x04"  # .npz and torch.save files are both zip archives

def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; 0o022 is a safe stand-in
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Write a file all at once or not at all.

    ``write`` fills a temporary file in the destination folder, which is flushed to disk and
    renamed over ``path`` (a rename within one folder is atomic). If anything fails, even a
    ``KeyboardInterrupt``, the temporary file is removed and an existing ``path`` is left as
    it was. The new file gets the usual permissions, ``0o666 & ~umask``.

    Args:
        path: Destination; missing parent folders are created.
        write: Called with the open binary file handle.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates files readable by their owner only
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    return path


def check_zip(path: Path, error: type[ValueError], what: str) -> None:
    """Raise unless ``path`` exists, is not empty and starts like a zip archive."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    with path.open("rb") as handle:  # a folder or an unreadable file fails here, named
        head = handle.read(len(ZIP_MAGIC))
    if not head:
        raise error(f"{path} is empty (0 bytes): it is truncated or corrupt")
    if head != ZIP_MAGIC:
        raise error(f"{path} was written by another program: it is not {what} (not a zip)")


def save_npz(path: str | os.PathLike, /, **arrays: np.ndarray) -> Path:
    """Save numeric arrays to ``path`` (``.npz``), atomically and without pickle.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: a suffix other than ``.npz``, no arrays, a name that ``np.savez`` takes
            for its own argument, or an array of Python objects (which would need pickle).
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"path must end in .npz, got {str(path)!r}")
    if not arrays:
        raise ValueError("save_npz needs at least one named array")
    if reserved := sorted({"file", "allow_pickle"} & arrays.keys()):
        raise ValueError(f"{reserved} are argument names of np.savez; rename those arrays")
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    for name, value in arrays.items():
        if value.dtype.hasobject:
            raise ValueError(f"array {name!r} has dtype object, which cannot be saved safely")
    return atomic_write(path, lambda handle: np.savez(handle, **arrays))


def load_npz(path: str | os.PathLike, required: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file, with ``allow_pickle=False``.

    Args:
        path: The file.
        required: Names that must be present.

    Returns:
        The arrays by name.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is empty, truncated, corrupt, not an ``.npz`` file, holds object
            arrays or lacks a required array; the message names the file.
    """
    path = Path(path)
    check_zip(path, ValueError, "an .npz file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except ValueError as err:  # NumPy's own refusals, e.g. object arrays without pickle
        raise ValueError(f"{path} cannot be loaded safely: {err}") from err
    except Exception as err:  # the zip reader fails in many ways on a damaged file
        raise ValueError(f"{path} is truncated or corrupt ({type(err).__name__}: {err})") from err
    if foreign := [name for name, value in arrays.items() if not isinstance(value, np.ndarray)]:
        raise ValueError(f"{path} is a zip archive but not an .npz file: {foreign} are no arrays")
    if missing := [name for name in required if name not in arrays]:
        raise ValueError(f"{path} lacks the arrays {missing}; it has {sorted(arrays)}")
    return arrays
