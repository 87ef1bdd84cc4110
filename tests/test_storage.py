"""Tests for tvae_lib.storage: atomic writes and .npz files."""

import os

import numpy as np
import pytest
import torch
from damage import bytes_of, flip_inside, npz_bytes, umask  # tests/ is on the path

from tvae_lib import storage

# --- atomic_write ----------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_write_creates_folders_with_ordinary_permissions(tmp_path, mask):
    old = os.umask(mask)
    try:
        path = storage.atomic_write(tmp_path / "a" / "b" / "f.bin", lambda h: h.write(b"xyz"))
    finally:
        os.umask(old)
    assert path == tmp_path / "a" / "b" / "f.bin" and path.read_bytes() == b"xyz"
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    assert os.listdir(path.parent) == ["f.bin"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt(), SystemExit(3)])
def test_failed_write_removes_the_temp_file_and_keeps_the_old_one(tmp_path, error):
    path = storage.atomic_write(tmp_path / "f.bin", lambda h: h.write(b"good"))

    def broken(handle):
        handle.write(b"half")
        raise error

    with pytest.raises(type(error)):
        storage.atomic_write(path, broken)
    assert os.listdir(tmp_path) == ["f.bin"] and path.read_bytes() == b"good"


def test_failed_rename_removes_the_temp_file(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(OSError):
        storage.atomic_write(tmp_path / "folder", lambda h: h.write(b"x"))
    assert os.listdir(tmp_path) == ["folder"]


# --- .npz ------------------------------------------------------------------------------------


def test_npz_round_trip_and_no_pickle(tmp_path):
    path = storage.save_npz(
        tmp_path / "sub" / "a.npz", x=np.arange(6.0).reshape(2, 3), n=np.int64(3)
    )
    loaded = storage.load_npz(path, required=["x"])
    np.testing.assert_array_equal(loaded["x"], np.arange(6.0).reshape(2, 3))
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary file left behind
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask()
    with pytest.raises(ValueError, match="lacks the arrays"):
        storage.load_npz(path, required=["y"])


@pytest.mark.parametrize(
    "name, arrays, match",
    [
        ("b.npz", {"x": np.array([{"a": 1}], dtype=object)}, "dtype object"),
        ("b.npz", {"x": np.zeros(2, dtype=[("a", "f8"), ("b", "O")])}, "dtype object"),
        ("c.npz", {}, "at least one"),
        ("d.npy", {"x": np.zeros(1)}, r"end in \.npz"),
        ("e.npz", {"file": np.zeros(1)}, "argument names of np.savez"),
        ("e.npz", {"allow_pickle": np.zeros(1)}, "argument names of np.savez"),
    ],
)
def test_bad_npz_save_raises_and_writes_nothing(tmp_path, name, arrays, match):
    with pytest.raises(ValueError, match=match):
        storage.save_npz(tmp_path / name, **arrays)
    assert os.listdir(tmp_path) == []


def test_save_npz_takes_an_array_called_path(tmp_path):
    path = storage.save_npz(tmp_path / "p.npz", path=np.ones(2))
    np.testing.assert_array_equal(storage.load_npz(path)["path"], np.ones(2))


def test_load_npz_refuses_pickled_objects(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"pickled\.npz cannot be loaded safely.*allow_pickle"):
        storage.load_npz(path)


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = storage.save_npz(tmp_path / "keep.npz", x=np.ones(3))

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        storage.save_npz(path, x=np.zeros(3))
    monkeypatch.undo()
    np.testing.assert_array_equal(storage.load_npz(path)["x"], np.ones(3))
    assert list(tmp_path.iterdir()) == [path]








BAD_NPZ = {
    "empty": (lambda p: p.write_bytes(b""), "is empty"),
    "truncated": (lambda p: p.write_bytes(npz_bytes()[:300]), "truncated or corrupt"),
    "flipped": (
        lambda p: p.write_bytes(flip_inside(npz_bytes(), np.arange(100.0).tobytes())),
        "truncated or corrupt.*CRC",
    ),
    "text": (lambda p: p.write_text("x,y\n1,2\n"), "another program"),
    "npy": (
        lambda p: p.write_bytes(bytes_of(lambda f: np.save(f, np.ones(3)))),
        "another program",
    ),
    "checkpoint": (
        lambda p: p.write_bytes(bytes_of(lambda f: torch.save({"a": torch.ones(2)}, f))),
        "zip archive but not an .npz file",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_bad_npz_file_raises_value_error_naming_it(tmp_path, case):
    make, match = BAD_NPZ[case]
    path = tmp_path / f"bad_{case}.npz"
    make(path)
    with pytest.raises(ValueError, match=match) as info:
        storage.load_npz(path)
    assert str(path) in str(info.value)


def test_missing_npz_raises_file_not_found_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz does not exist"):
        storage.load_npz(tmp_path / "nothing.npz")
