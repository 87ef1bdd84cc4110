"""Helpers the storage and checkpoint tests share: file bytes, and damage done to them."""

import io
import os

import numpy as np


def umask() -> int:
    """The process's umask (reading it means setting it, so it is set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def bytes_of(write) -> bytes:
    """What ``write(file)`` writes, e.g. ``lambda f: np.save(f, x)``."""
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def npz_bytes() -> bytes:
    """A small valid ``.npz`` file's bytes."""
    return bytes_of(lambda f: np.savez(f, x=np.arange(100.0)))


def flip_inside(data: bytes, needle: bytes) -> bytes:
    """``data`` with 8 bytes inverted just after the first 8 bytes of ``needle``."""
    at = data.index(needle) + 8
    return data[:at] + bytes(b ^ 0xFF for b in data[at : at + 8]) + data[at + 8 :]
