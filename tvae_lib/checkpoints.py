"""Checkpoints: a model's config, weights and metadata in one file, never pickle.

A checkpoint (format version 2) is a ``torch.save`` archive holding only tensors, strings and
ints: the weights, the config and the metadata as JSON text, the model's kind, and a SHA-256
of all of them. :func:`load_checkpoint` reads it with ``torch.load(..., weights_only=True)``,
because unpickling a file runs whatever code its author chose, and checks the SHA-256, so a
damaged or foreign file fails loudly, with a message naming the file, instead of loading wrong
weights silently. Writes are atomic (:func:`tvae_lib.storage.atomic_write`).

:func:`save_model` and :func:`load_model` do this for a
:class:`~tvae_lib.tvae.TransformerVAE`; :func:`save_checkpoint` and :func:`load_checkpoint` for
any config and state dict.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import zipfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from tvae_lib import checks
from tvae_lib.storage import atomic_write, check_zip
from tvae_lib.tvae import TransformerVAE, TVAEConfig

__all__ = ["CheckpointError", "Checkpoint", "save_checkpoint", "load_checkpoint"]
__all__ += ["convert_legacy_checkpoint", "save_model", "load_model"]

FORMAT, VERSION = "tvae_lib.checkpoint", 2


class CheckpointError(ValueError):
    """A file that is not a sound checkpoint of the expected format, version and kind."""


class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` returns."""

    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any]

_FIXES = (
    (np.bool_, "convert it with bool()"),
    (numbers.Integral, "convert it with int()"),
    (numbers.Real, "convert it with float()"),  # after Integral: an int is a Real too
    (os.PathLike, "convert it with str()"),
    (tuple | set | frozenset, "convert it to a list"),
    (torch.Tensor | np.ndarray, "convert it with .tolist()"),
)


def _check_json(where: str, value: object) -> None:
    """Raise, naming the key path ``where``, unless ``value`` is made of plain JSON types."""
    if isinstance(value, dict):
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"{where} has the key {key!r}; JSON keys must be str")
            _check_json(f"{where}[{key!r}]", item)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(f"{where}[{i}]", item)
    elif type(value) is float:
        checks.finite_float(where, value)  # JSON has no NaN or infinity
    elif type(value) not in (str, int, bool, type(None)):  # exact types: np.float64 is a float
        cls = type(value)
        fix = next((fix for types, fix in _FIXES if isinstance(value, types)), "use plain types")
        name = f"{cls.__module__}.{cls.__qualname__}".removeprefix("builtins.")
        raise TypeError(f"{where} is {name}; {fix}")


def _digest(
    tensors: Mapping[str, torch.Tensor], config_json: str, metadata_json: str, kind: str
) -> str:
    """SHA-256 of each tensor's name, dtype, shape and bytes (in name order) and the texts."""
    sha = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu()
        sha.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode())
        sha.update(tensor.reshape(-1).contiguous().view(torch.uint8).numpy())  # even bfloat16
    sha.update(json.dumps([kind, config_json, metadata_json]).encode())
    return sha.hexdigest()


def _check_kind(kind: object) -> str:
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"kind must be a non-empty str, got {kind!r}")
    return kind


def save_checkpoint(
    path: str | os.PathLike,
    *,
    config: dict[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    metadata: dict[str, Any] | None = None,
    kind: str = "TransformerVAE",
) -> Path:
    """Save a model's config, weights and metadata atomically (format version 2).

    Everything is checked before anything is written. The file holds only tensors, strings
    and ints, so :func:`load_checkpoint` can read it with ``weights_only=True``.

    Args:
        path: Destination (``.pt``).
        config: The model's settings, as plain JSON values.
        state_dict: The weights by name (stored on the CPU).
        metadata: Plain JSON values too, e.g. a training history of Python floats.
        kind: The model class, checked on loading.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: a value that is not plain JSON (a NumPy scalar, a tuple, a ``Path`` ...),
            a key that is not a str, or a state_dict entry that is not a tensor; the message
            names it.
        ValueError: a NaN or infinite float in config or metadata.
    """
    kind, metadata = _check_kind(kind), {} if metadata is None else metadata
    for name, value in (("config", config), ("metadata", metadata)):
        if not isinstance(value, dict):
            raise TypeError(f"{name} must be a dict, got {type(value).__name__}")
        _check_json(name, value)
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
    for name, tensor in state_dict.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise TypeError(f"state_dict[{name!r}] must be a tensor under a str name")
    tensors = {name: tensor.detach().cpu() for name, tensor in state_dict.items()}
    texts = {"config_json": json.dumps(config, sort_keys=True)}
    texts["metadata_json"] = json.dumps(metadata, sort_keys=True)
    sha256 = _digest(tensors, texts["config_json"], texts["metadata_json"], kind)
    payload = {"format": FORMAT, "version": VERSION, "kind": kind, **texts, "sha256": sha256}
    payload["state_dict"] = tensors
    return atomic_write(path, lambda handle: torch.save(payload, handle))


def _torch_load(path: Path, map_location: Any) -> object:
    """``torch.load`` without pickle, or ``None`` for a zip that torch.save did not write."""
    check_zip(path, CheckpointError, "a checkpoint")
    try:
        with zipfile.ZipFile(path) as archive:
            if not any(name.endswith("/data.pkl") for name in archive.namelist()):
                return None
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # the readers fail in many ways on a damaged file
        reason = (str(err).strip().splitlines() or [""])[0]
        raise CheckpointError(
            f"{path} is truncated or corrupt, or holds objects only pickle "
            f"could load ({type(err).__name__}: {reason})"
        ) from err


def load_checkpoint(
    path: str | os.PathLike, *, kind: str = "TransformerVAE", map_location: Any = "cpu"
) -> Checkpoint:
    """Load a file written by :func:`save_checkpoint`, checking its SHA-256 (never pickle).

    Args:
        path: The file.
        kind: The model class the file must hold.
        map_location: Where the tensors go, as for :func:`torch.load`.

    Returns:
        ``Checkpoint(config, state_dict, metadata)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is empty, truncated, corrupt, another program's, an old
            (version 1) checkpoint, of another version or kind, or fails its SHA-256 check.
    """
    path, kind = Path(path), _check_kind(kind)
    payload = _torch_load(path, map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        if isinstance(payload, dict) and {"config", "state_dict"} <= payload.keys():
            raise CheckpointError(
                f"{path} is an old-format (version 1) checkpoint; convert it once, in place, "
                "with tvae_lib.checkpoints.convert_legacy_checkpoint(path)"
            )
        raise CheckpointError(f"{path} was written by another program: it is no tvae_lib file")
    if (version := payload.get("version")) != VERSION:
        raise CheckpointError(
            f"{path} is checkpoint version {version!r}; this code reads {VERSION}"
        )
    state = payload.get("state_dict")
    texts = [payload.get(key) for key in ("kind", "config_json", "metadata_json", "sha256")]
    if not isinstance(state, dict) or not all(isinstance(text, str) for text in texts):
        raise CheckpointError(f"{path} is truncated or corrupt: a field has the wrong type")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path} is truncated or corrupt: its state_dict holds non-tensors")
    saved_kind, config_json, metadata_json, sha256 = texts
    if _digest(state, config_json, metadata_json, saved_kind) != sha256:
        raise CheckpointError(
            f"{path}: its tensors do not match the SHA-256 stored in it: the file was modified "
            "or damaged"
        )
    if saved_kind != kind:
        raise CheckpointError(f"{path} holds a {saved_kind!r}, not a {kind!r}")
    return Checkpoint(json.loads(config_json), dict(state), json.loads(metadata_json))


def convert_legacy_checkpoint(path: str | os.PathLike, *, kind: str = "TransformerVAE") -> Path:
    """Rewrite an old (version 1) checkpoint in place as version 2, tensors bit for bit.

    Version 1 was a ``torch.save`` of ``{"config": ..., "state_dict": ..., "metadata": ...}``
    with no format field and no checksum. A file already at version 2 is checked and kept.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is no readable version 1 or version 2 checkpoint.
        TypeError: its metadata holds values that are not plain JSON (the file is kept).
    """
    path = Path(path)
    payload = _torch_load(path, "cpu")
    if isinstance(payload, dict) and "format" in payload:
        load_checkpoint(path, kind=kind)
        return path
    if not (
        isinstance(payload, dict)
        and isinstance(payload.get("config"), dict)
        and isinstance(payload.get("state_dict"), dict)
    ):
        raise CheckpointError(f"{path} was written by another program: it is no v1 checkpoint")
    return save_checkpoint(
        path,
        config=payload["config"],
        state_dict=payload["state_dict"],
        metadata=payload.get("metadata"),
        kind=kind,
    )


def save_model(
    model: TransformerVAE, path: str | os.PathLike, metadata: dict[str, Any] | None = None
) -> Path:
    """Save a model's config, weights and plain JSON metadata with :func:`save_checkpoint`.

    The file is written atomically and carries a SHA-256 of its tensors, verified on load.

    Args:
        model: The model.
        path: Destination (``.pt``).
        metadata: Plain JSON values only (numbers, strings, lists, dicts), e.g. a history.

    Returns:
        The path written.
    """
    if not isinstance(model, TransformerVAE):
        raise TypeError(f"model must be a TransformerVAE, got {type(model).__name__}")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_checkpoint(
        path, config=asdict(model.config), state_dict=state, metadata=metadata or {}
    )


def load_model(
    path: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[TransformerVAE, dict[str, Any]]:
    """Load a model saved by :func:`save_model` (``weights_only=True``: no pickle).

    A model with a learned noise saved before the noise had a mean (``noise_var`` without
    ``noise_mean``) keeps its weights and variance; its mean is left unfitted, so
    ``generate`` asks for :meth:`~tvae_lib.tvae.TransformerVAE.fit_noise` instead of
    sampling without it.

    Returns:
        ``(model, metadata)``, the model in evaluation mode on ``device``.

    Raises:
        CheckpointError: the file is not such a checkpoint, or is damaged.
    """
    checkpoint = load_checkpoint(path, map_location=device)
    state = checkpoint.state_dict
    if "noise_var" in state and "noise_mean" not in state:  # saved before the noise's mean
        state = {**state, "noise_mean": torch.full_like(state["noise_var"], float("nan"))}
    try:
        model = TransformerVAE(TVAEConfig(**checkpoint.config))
        model.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path} does not fit this TransformerVAE: {err}") from err
    return model.to(device).eval(), checkpoint.metadata
