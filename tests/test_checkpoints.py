"""Tests for tvae_lib.checkpoints: format version 2, its checks, and the legacy converter."""

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from damage import flip_inside, npz_bytes, umask  # tests/ is on the path

from tvae_lib import checkpoints
from tvae_lib.checkpoints import CheckpointError

CONFIG = {"n_features": 3, "d_model": 8, "dropout": 0.1, "embedding": "conv", "n_classes": None}
METADATA = {"run": "test", "history": {"loss": [1.5, 0.25, 1e-300, -0.0], "ok": [True]}}


def _state() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        "float32": torch.randn(4, 3, generator=gen),
        "float64": torch.randn(5, dtype=torch.float64, generator=gen),
        "bfloat16": torch.randn(2, 3, generator=gen).to(torch.bfloat16),
        "int64": torch.arange(6).reshape(2, 3),
        "bool": torch.tensor([True, False]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
        "transposed": torch.randn(3, 2, generator=gen).t(),  # not contiguous
    }




def _save(path: Path, **kwargs) -> Path:
    args = {"config": CONFIG, "state_dict": _state(), "metadata": METADATA} | kwargs
    return checkpoints.save_checkpoint(path, **args)


def _assert_same_state(loaded: dict, expected: dict) -> None:
    assert sorted(loaded) == sorted(expected)
    for name, tensor in expected.items():
        assert loaded[name].dtype == tensor.dtype, name
        assert torch.equal(loaded[name], tensor), name








# --- checkpoints: saving ---------------------------------------------------------------------


def test_checkpoint_round_trip_is_bit_exact(tmp_path):
    path = _save(tmp_path / "sub" / "model.pt", kind="Toy")
    assert path == tmp_path / "sub" / "model.pt" and os.listdir(path.parent) == ["model.pt"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask()
    loaded = checkpoints.load_checkpoint(path, kind="Toy", map_location=torch.device("cpu"))
    assert isinstance(loaded, checkpoints.Checkpoint)
    assert loaded.config == CONFIG and loaded.metadata == METADATA
    _assert_same_state(loaded.state_dict, _state())


def test_checkpoint_holds_only_plain_values(tmp_path):
    path = _save(tmp_path / "m.pt", metadata=None)
    payload = torch.load(path, weights_only=True)
    assert {k: v for k, v in payload.items() if k not in ("state_dict", "sha256")} == {
        "format": "tvae_lib.checkpoint",
        "version": 2,
        "kind": "TransformerVAE",
        "config_json": '{"d_model": 8, "dropout": 0.1, "embedding": "conv", "n_classes": null, '
        '"n_features": 3}',
        "metadata_json": "{}",
    }
    assert len(payload["sha256"]) == 64 and checkpoints.load_checkpoint(path).metadata == {}


def test_module_parameters_are_saved_detached(tmp_path):
    layer = torch.nn.Linear(3, 2)
    path = checkpoints.save_checkpoint(tmp_path / "l.pt", config={}, state_dict=layer.state_dict())
    _assert_same_state(checkpoints.load_checkpoint(path).state_dict, layer.state_dict())


BAD_SAVES = [
    (
        {"metadata": {"history": {"loss": [1.0, 2.0, 3.0, np.float32(0.5)]}}},
        TypeError,
        r"^metadata\['history'\]\['loss'\]\[3\] is numpy.float32; convert it with float\(\)$",
    ),
    ({"metadata": {"n": np.int64(3)}}, TypeError, r"metadata\['n'\] is numpy.int64; .* int\(\)"),
    ({"metadata": {"b": np.bool_(True)}}, TypeError, r"numpy.bool_?; convert it with bool\(\)"),
    ({"metadata": {"p": Path("x")}}, TypeError, r"\['p'\] is pathlib.PosixPath; .* str\(\)"),
    ({"metadata": {"t": (1, 2)}}, TypeError, r"\['t'\] is tuple; convert it to a list"),
    ({"metadata": {"s": {1}}}, TypeError, r"\['s'\] is set; convert it to a list"),
    ({"metadata": {"x": torch.ones(2)}}, TypeError, r"is torch.Tensor; .*\.tolist\(\)"),
    ({"metadata": {"z": 1j}}, TypeError, r"\['z'\] is complex; use plain types"),
    ({"metadata": {"l": [float("nan")]}}, ValueError, r"metadata\['l'\]\[0\] must be finite"),
    ({"config": {"d": float("inf")}}, ValueError, r"config\['d'\] must be finite"),
    ({"config": {1: 2}}, TypeError, "config has the key 1; JSON keys must be str"),
    ({"config": {"a": {None: 2}}}, TypeError, r"config\['a'\] has the key None"),
    ({"config": [1]}, TypeError, "config must be a dict, got list"),
    ({"metadata": "notes"}, TypeError, "metadata must be a dict, got str"),
    ({"state_dict": {"w": np.ones(2)}}, TypeError, r"state_dict\['w'\] must be a tensor"),
    ({"state_dict": {1: torch.ones(2)}}, TypeError, r"state_dict\[1\] must be a tensor"),
    ({"state_dict": [torch.ones(2)]}, TypeError, "state_dict must be a mapping"),
    ({"kind": ""}, TypeError, "kind must be a non-empty str"),
    ({"kind": None}, TypeError, "kind must be a non-empty str"),
]


@pytest.mark.parametrize("kwargs, error, match", BAD_SAVES)
def test_bad_checkpoint_save_raises_before_writing(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        _save(tmp_path / "m.pt", **kwargs)
    assert os.listdir(tmp_path) == []


def test_failed_checkpoint_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = _save(tmp_path / "m.pt")
    before = path.read_bytes()
    with pytest.raises(TypeError, match="numpy.float64"):
        _save(path, metadata={"loss": np.float64(1.0)})

    def interrupted_save(obj, handle):
        handle.write(b"PK\x03\x04 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        _save(path, config={"other": 1})
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["m.pt"] and path.read_bytes() == before
    assert checkpoints.load_checkpoint(path).config == CONFIG


# --- checkpoints: loading bad files ----------------------------------------------------------


def _rewrite(path: Path, **changes) -> None:
    """Re-save a good checkpoint's payload with some fields changed (None drops a field)."""
    payload = torch.load(path, weights_only=True) | changes
    torch.save({k: v for k, v in payload.items() if v is not None}, path)


class _Opaque:
    pass


def _with_object(path: Path) -> None:
    torch.save({"format": "tvae_lib.checkpoint", "thing": _Opaque()}, path)


def _tensor_flipped(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(flip_inside(data, _state()["float64"].numpy().tobytes()))


BAD_CHECKPOINTS = {
    "empty": (lambda p: p.write_bytes(b""), "is empty .*truncated or corrupt"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:1000]), "truncated or corrupt"),
    "tensor bytes flipped": (_tensor_flipped, "do not match the SHA-256 stored in it"),
    "config changed": (
        lambda p: _rewrite(p, config_json='{"n_features": 4}'),
        "its tensors do not match the SHA-256 stored in it: the file was modified or damaged",
    ),
    "tensor replaced": (
        lambda p: _rewrite(p, state_dict=_state() | {"int64": torch.zeros(2, 3).long()}),
        "SHA-256",
    ),
    "kind changed": (lambda p: _rewrite(p, kind="Other"), "SHA-256"),
    "plain torch.save": (lambda p: torch.save({"a": 1}, p), "written by another program"),
    "torch.save of a list": (lambda p: torch.save([1, 2], p), "written by another program"),
    "text file": (lambda p: p.write_text("weights\n"), "written by another program"),
    "npz file": (lambda p: p.write_bytes(npz_bytes()), "written by another program"),
    "pickled object": (_with_object, "holds objects only pickle could load"),
    "other format": (lambda p: _rewrite(p, format="someone.else"), "another program"),
    "version 3": (lambda p: _rewrite(p, version=3), "is checkpoint version 3; this code reads 2"),
    "no version": (lambda p: _rewrite(p, version=None), "is checkpoint version None"),
    "sha256 missing": (lambda p: _rewrite(p, sha256=None), "a field has the wrong type"),
    "state_dict a list": (lambda p: _rewrite(p, state_dict=[1]), "a field has the wrong type"),
    "non-tensor weight": (lambda p: _rewrite(p, state_dict={"w": 1}), "holds non-tensors"),
    "version 1": (
        lambda p: torch.save({"config": {}, "state_dict": {}, "metadata": {}}, p),
        r"old-format \(version 1\).*convert_legacy_checkpoint",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CHECKPOINTS))
def test_bad_checkpoint_raises_checkpoint_error_naming_the_file(tmp_path, case):
    make, match = BAD_CHECKPOINTS[case]
    path = _save(tmp_path / "bad_file.pt")
    make(path)
    with pytest.raises(CheckpointError, match=match) as info:
        checkpoints.load_checkpoint(path)
    assert str(info.value).startswith(str(path))
    assert isinstance(info.value, ValueError)


def test_wrong_kind_raises(tmp_path):
    path = _save(tmp_path / "m.pt", kind="Toy")
    with pytest.raises(CheckpointError, match="m.pt holds a 'Toy', not a 'TransformerVAE'"):
        checkpoints.load_checkpoint(path)
    with pytest.raises(TypeError, match="kind"):
        checkpoints.load_checkpoint(path, kind=3)


def test_missing_checkpoint_raises_file_not_found_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pt does not exist"):
        checkpoints.load_checkpoint(tmp_path / "nothing.pt")


def test_random_damage_never_loads_different_values(tmp_path):
    path = _save(tmp_path / "m.pt")
    good = path.read_bytes()
    rng = random.Random(0)
    for _ in range(150):
        data = bytearray(good)
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        try:
            loaded = checkpoints.load_checkpoint(path)
        except CheckpointError:
            continue
        # a flip in zip bookkeeping that torch does not read is harmless
        assert loaded.config == CONFIG and loaded.metadata == METADATA
        _assert_same_state(loaded.state_dict, _state())
    for end in range(0, len(good), 97):
        path.write_bytes(good[:end])
        with pytest.raises(CheckpointError):
            checkpoints.load_checkpoint(path)


# --- legacy conversion -----------------------------------------------------------------------


def test_convert_legacy_checkpoint_keeps_tensors_bit_for_bit(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"config": CONFIG, "state_dict": _state(), "metadata": METADATA}, path)
    assert checkpoints.convert_legacy_checkpoint(path) == path
    loaded = checkpoints.load_checkpoint(path)
    assert loaded.config == CONFIG and loaded.metadata == METADATA
    _assert_same_state(loaded.state_dict, _state())
    converted = path.read_bytes()
    assert checkpoints.convert_legacy_checkpoint(path) == path  # already version 2: kept as it is
    assert path.read_bytes() == converted and os.listdir(tmp_path) == ["old.pt"]


def test_convert_legacy_checkpoint_without_metadata(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"config": {}, "state_dict": {"w": torch.ones(2)}}, path)
    assert checkpoints.load_checkpoint(checkpoints.convert_legacy_checkpoint(path)).metadata == {}


def test_convert_keeps_a_file_it_cannot_convert(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"config": {}, "state_dict": {}, "metadata": {"x": (1, 2)}}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"metadata\['x'\] is tuple"):
        checkpoints.convert_legacy_checkpoint(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["old.pt"]
    torch.save({"a": 1}, path)
    with pytest.raises(CheckpointError, match="old.pt was written by another program"):
        checkpoints.convert_legacy_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        checkpoints.convert_legacy_checkpoint(tmp_path / "nothing.pt")
