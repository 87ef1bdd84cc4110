"""One training loop for every chapter.

A chapter describes *what* one step computes with a ``step_fn(model, batch) -> dict`` whose
``"loss"`` entry is the scalar to minimise; every other entry is logged. :func:`fit` does the
rest: devices, the optimiser step, gradient clipping, validation, early stopping, a progress
bar and a per-epoch history.
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.std import tqdm

from tvae_lib.checks import one_of, positive_int
from tvae_lib.utils import progress_enabled

__all__ = ["History", "StepFn", "to_device", "evaluate", "fit"]

StepFn = Callable[[nn.Module, Any], Mapping[str, torch.Tensor]]


@dataclass
class History:
    """Per-epoch averages of everything ``step_fn`` returned.

    Training entries keep their names (``"loss"``, ``"kl"``); validation entries are prefixed
    with ``"val_"``. ``history["val_loss"]`` is a list with one float per epoch.
    """

    metrics: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int | None = None  # 0-based epoch with the lowest monitored value
    stopped_early: bool = False

    def __getitem__(self, name: str) -> list[float]:
        return self.metrics[name]

    def __contains__(self, name: str) -> bool:
        return name in self.metrics

    @property
    def epochs(self) -> int:
        """How many epochs ran."""
        return len(next(iter(self.metrics.values()), []))

    def last(self) -> dict[str, float]:
        """The final epoch's values."""
        return {name: values[-1] for name, values in self.metrics.items()}


def to_device(batch: Any, device: torch.device | str) -> Any:
    """Move every tensor inside a (nested) tuple, list, dict or NamedTuple to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # NamedTuple
        return type(batch)(*(to_device(item, device) for item in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(item, device) for item in batch)
    if isinstance(batch, Mapping):
        return {name: to_device(item, device) for name, item in batch.items()}
    return batch


def _batch_size(batch: Any) -> int:
    """Number of samples in a batch: the first dimension of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    items = batch.values() if isinstance(batch, Mapping) else batch
    for item in items:
        if isinstance(item, torch.Tensor):
            return item.shape[0]
    return 1


class _Averager:
    """Sample-weighted running means of scalar tensors."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.count = 0

    def add(self, values: Mapping[str, torch.Tensor], n: int) -> None:
        for name, value in values.items():
            self.sums[name] += float(value.detach()) * n
        self.count += n

    def means(self) -> dict[str, float]:
        return {name: total / max(self.count, 1) for name, total in self.sums.items()}


def _check_step_output(out: Any) -> None:
    if not isinstance(out, Mapping) or "loss" not in out:
        raise TypeError("step_fn must return a dict with a scalar tensor under 'loss'")
    for name, value in out.items():
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise TypeError(f"step_fn's {name!r} must be a scalar tensor, got {value!r}")


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    step_fn: StepFn,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Average ``step_fn``'s outputs over ``loader`` in evaluation mode, without gradients."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    averager = _Averager()
    for batch in loader:
        batch = to_device(batch, device)
        out = step_fn(model, batch)
        _check_step_output(out)
        averager.add(out, _batch_size(batch))
    model.train(was_training)
    return averager.means()


def fit(
    model: nn.Module,
    train_loader: Iterable,
    step_fn: StepFn,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    val_loader: Iterable | None = None,
    device: torch.device | str | None = None,
    clip_grad_norm: float | None = None,
    scheduler: Any = None,
    scheduler_every: str = "epoch",
    patience: int | None = None,
    monitor: str = "val_loss",
    restore_best: bool = True,
    on_epoch_start: Callable[[int], None] | None = None,
    progress: bool | None = None,
    desc: str = "training",
) -> History:
    """Train ``model`` for up to ``epochs`` epochs and return its :class:`History`.

    Args:
        model: The module to train (moved to ``device``).
        train_loader: Iterable of batches (tensors, tuples, dicts or NamedTuples of tensors).
        step_fn: ``step_fn(model, batch) -> {"loss": scalar, ...}``; the other scalars are
            logged as they are (training) and with a ``val_`` prefix (validation).
        epochs: Maximum number of passes over ``train_loader``.
        optimizer: Optimiser over ``model``'s parameters.
        val_loader: Optional validation batches, evaluated after every epoch.
        device: Where to train; defaults to the model's current device.
        clip_grad_norm: Clip the global gradient norm to this value when given.
        scheduler: Optional learning-rate scheduler, stepped once per epoch.
        scheduler_every: ``"epoch"``, or ``"step"`` to step the scheduler after every optimiser
            step instead (a warm-up over the first steps, as in the original Transformer).
        patience: Stop after this many epochs without improvement of ``monitor``.
        monitor: The history entry early stopping and ``best_epoch`` watch (lower is better).
        restore_best: With ``patience``, load the best epoch's weights back at the end.
        on_epoch_start: Called with the 0-based epoch before it starts (e.g. a KL schedule).
        progress: Show a tqdm progress bar over epochs; ``None``: unless the environment
            variable ``TVAE_PROGRESS`` is ``0`` (:func:`tvae_lib.utils.progress_enabled`).
        desc: The progress bar's label.

    Returns:
        The per-epoch history.
    """
    positive_int("epochs", epochs)
    per_step = one_of("scheduler_every", scheduler_every, ("epoch", "step")) == "step"
    if patience is not None:
        positive_int("patience", patience)
    if patience is not None and monitor.startswith("val_") and val_loader is None:
        raise ValueError(f"early stopping on monitor={monitor!r} needs a val_loader")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    history = History()
    best_value, best_state, waited = math.inf, None, 0
    show = progress_enabled() if progress is None else bool(progress)
    bar = tqdm(range(epochs), desc=desc, disable=not show, mininterval=30.0, ncols=100)
    for epoch in bar:
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        model.train()
        averager = _Averager()
        for batch in train_loader:
            batch = to_device(batch, device)
            out = step_fn(model, batch)
            _check_step_output(out)
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
            if scheduler is not None and per_step:
                scheduler.step()
            averager.add(out, _batch_size(batch))
        epoch_metrics = averager.means()
        if val_loader is not None:
            val_metrics = evaluate(model, val_loader, step_fn, device)
            epoch_metrics.update({f"val_{name}": value for name, value in val_metrics.items()})
        if scheduler is not None and not per_step:
            scheduler.step()
        for name, value in epoch_metrics.items():
            history.metrics.setdefault(name, []).append(value)
        bar.set_postfix({name: f"{value:.4g}" for name, value in epoch_metrics.items()})

        current = epoch_metrics.get(monitor)
        if current is None:
            continue
        if current < best_value:
            best_value, history.best_epoch, waited = current, epoch, 0
            if patience is not None and restore_best:
                best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
            if patience is not None and waited >= patience:
                history.stopped_early = True
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
