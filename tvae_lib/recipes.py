"""Training recipes for the Transformer-VAE, for any dataset.

A :class:`Recipe` holds the objective's knobs (the reconstruction term, the KL weight and its
schedule, free bits, an optional label-guided latent) and the optimisation (epochs, learning
rate, an optional free-running phase). :func:`train` runs it on any loaders, with the one
training loop of :mod:`tvae_lib.training`: ``fit`` knows nothing about VAEs, the recipe knows
nothing about the door data.

**The defaults work on new data.** ``Recipe()`` uses the summed squared error (the
log-likelihood of a Gaussian decoder, up to a constant factor) with a KL weight of 0.03, which,
with :class:`~tvae_lib.tvae.TVAEConfig`'s default decoder-input dropout, keeps the latent code
in use; then, after 20 epochs of teacher forcing, 24 epochs on the decoder's own free-running
outputs, without which the free-running error stays above simple baselines (exposure bias:
on chapter 9's BasicMotions, 20 teacher-forced epochs alone gave a free-running error of
about 1.5, PCA with two components 0.82, the recipe about 0.8). The objective that collapses (the squared error *averaged* over the values, with a KL
weight of 1, the choice of the post *[Pytorch] Transformer-VAE 구현*) exists only under its explicit name
(``Recipe(recon="mse_mean", beta=1.0)``), for chapter 7 to show the collapse.

**How β relates to your data.** The reconstruction term is summed over a sequence's T x F
values, the KL over its Z latent units, so the balance depends on the data's size and scale:
doubling the length or the channel count doubles the reconstruction term's pull; scaling the
data by ``s`` multiplies it by ``s**2``. Standardise each channel on the training steps first
(:class:`~tvae_lib.sequences.SequenceScaler`), after which β of about 0.03 to 0.3 suits
sequences of a few hundred values; watch :func:`tvae_lib.vae.active_units` and raise β when
samples from the prior look unlike the data, lower it when units go inactive. ``free_bits=1.0``
(chapter 7's final recipe for the door) leaves each unit its first nat of KL, so a unit that
carries only a little is not switched off; the default leaves it at 0 because chapter 9's data
keep every unit without it.

Batches may be a tensor ``x`` (B, T, F), a tuple ``(x,)`` or ``(x, labels)``, or a
:class:`~tvae_lib.sequences.PaddedBatch` (variable lengths; padding masked out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from tvae_lib.checks import (
    finite_float,
    non_negative_float,
    non_negative_int,
    one_of,
    positive_float,
    positive_int,
)
from tvae_lib.sequences import PaddedBatch
from tvae_lib.training import History, fit
from tvae_lib.tvae import TransformerVAE
from tvae_lib.vae import linear_kl_weight, reparameterize, vae_loss

__all__ = ["Recipe", "unpack_batch", "make_step_fn", "train"]


@dataclass
class Recipe:
    """How to train a :class:`~tvae_lib.tvae.TransformerVAE`: the objective and the schedule."""

    recon: str = "mse_sum"  # reconstruction term, see tvae_lib.vae.vae_loss ("mse_mean" collapses)
    beta: float = 0.03  # final KL weight (see the module docstring on the data's scale)
    warmup_epochs: int = 0  # KL annealing: epochs for the weight to rise from 0 to beta
    free_bits: float = 0.0  # per-dimension KL floor in nats
    epochs: int = 20  # passes over the training set with teacher forcing
    lr: float = 1e-3  # Adam's learning rate
    batch_size: int = 32  # sequences per step (for loaders built from the recipe)
    class_weight: float = 0.0  # weight of a classifier's cross-entropy on mu (needs labels)
    free_running_epochs: int = 24  # then: epochs trained on the decoder's own outputs
    free_running_lr: float = 1e-3  # Adam's learning rate for those epochs
    clip_grad_norm: float = 1.0  # the global gradient norm is clipped to this

    def __post_init__(self) -> None:
        one_of("recon", self.recon, ("mse_sum", "mse_mean", "bce"))
        non_negative_float("beta", self.beta)
        non_negative_int("warmup_epochs", self.warmup_epochs)
        non_negative_float("free_bits", self.free_bits)
        positive_int("epochs", self.epochs)
        positive_float("lr", self.lr)
        positive_int("batch_size", self.batch_size)
        non_negative_float("class_weight", self.class_weight)
        non_negative_int("free_running_epochs", self.free_running_epochs)
        positive_float("free_running_lr", self.free_running_lr)
        positive_float("clip_grad_norm", self.clip_grad_norm)


def unpack_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(x (B, T, F), mask (B, T) or None, labels (B,) or None)`` from any supported batch."""
    if isinstance(batch, PaddedBatch):
        return batch.x, batch.mask, batch.labels
    if isinstance(batch, torch.Tensor):
        return batch, None, None
    if isinstance(batch, (tuple, list)) and 1 <= len(batch) <= 2:
        labels = batch[1] if len(batch) == 2 else None
        return batch[0], None, labels
    raise TypeError(
        "a batch must be a tensor x (B, T, F), a tuple (x,) or (x, labels), or a PaddedBatch; "
        f"got {type(batch).__name__}"
    )


def _check_labels(labels: torch.Tensor | None, n_classes: int, batch: int) -> torch.Tensor:
    if labels is None:
        raise ValueError("class_weight > 0 needs labels: batches must be (x, labels) or carry them")
    if labels.shape != (batch,) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(
            f"labels must be {batch} integers (shape ({batch},)), got {labels.dtype} "
            f"{tuple(labels.shape)}"
        )
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(
            f"labels must lie in [0, n_classes={n_classes}), got {int(labels.min())}.."
            f"{int(labels.max())}"
        )
    return labels


def make_step_fn(recipe: Recipe, state: dict[str, Any]):
    """The ``step_fn`` for :func:`tvae_lib.training.fit`.

    ``state["beta"]`` is the current KL weight. With ``state["free_running"]`` true, the
    reconstruction is decoded free-running from the sampled z (through the key/value cache,
    with gradients) instead of with teacher forcing. With ``recipe.class_weight > 0`` the
    classifier's cross-entropy on ``mu`` joins the loss (logged as ``class_ce``).

    In evaluation mode (validation), teacher forcing applies the model's decoder-input
    dropout too, drawn from ``state["val_generator"]`` (re-seeded every epoch by
    :func:`train`, so the same steps are dropped each time): the validation loss then measures
    what the training loss measures, and the two curves can be compared. The clean errors
    (no dropout, or free-running) come from :mod:`tvae_lib.evaluation`.
    """
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a Recipe, got {type(recipe).__name__}")

    def step(model: TransformerVAE, batch) -> dict[str, torch.Tensor]:
        x, mask, labels = unpack_batch(batch)
        if recipe.class_weight and not model.config.n_classes:
            raise ValueError("class_weight > 0 needs a classifier: set TVAEConfig.n_classes")
        if state.get("free_running"):
            mu, logvar = model.encode(x, mask)
            z = reparameterize(mu, logvar) if model.training else mu  # as in forward()
            x_hat = model.free_run(z, x.shape[1])
        elif not model.training and model.config.decoder_input_dropout > 0:
            mu, logvar = model.encode(x, mask)  # z = mu, as forward() in evaluation mode
            x_hat = model.decode(mu, x, mask, input_dropout=model.config.decoder_input_dropout,
                                 generator=state.get("val_generator"))  # fmt: skip
        else:
            x_hat, mu, logvar = model(x, mask)
        out = vae_loss(
            x_hat, x, mu, logvar, beta=state["beta"], free_bits=recipe.free_bits,
            recon=recipe.recon, mask=mask,
        )  # fmt: skip
        if recipe.class_weight:
            labels = _check_labels(labels, model.config.n_classes, x.shape[0])
            out["class_ce"] = F.cross_entropy(model.classify(mu), labels)
            out["loss"] = out["loss"] + recipe.class_weight * out["class_ce"]
        return out

    return step


def train(
    model: TransformerVAE,
    recipe: Recipe,
    train_loader,
    val_loader=None,
    *,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> History:
    """Train ``model`` with ``recipe``: ``recipe.epochs`` with teacher forcing, then
    ``recipe.free_running_epochs`` on the decoder's own outputs.

    Seed (:func:`tvae_lib.utils.seed_everything`) before building the model and the loaders
    for a reproducible run. A model built with ``TVAEConfig(learned_noise=True)`` then gets
    its noise fitted to the training batches (as
    :meth:`~tvae_lib.tvae.TransformerVAE.fit_noise` does).

    Args:
        model: The model (trained in place, left in evaluation mode).
        recipe: The objective and schedule.
        train_loader: Training batches (see the module docstring for the batch forms).
        val_loader: Optional validation batches, evaluated after every epoch.
        device: Where to train; defaults to the model's device.
        progress: Show a progress bar per phase.

    Returns:
        The history over all epochs of both phases.
    """
    if not isinstance(model, TransformerVAE):
        raise TypeError(f"model must be a TransformerVAE, got {type(model).__name__}")
    if recipe.class_weight and not model.config.n_classes:
        raise ValueError("recipe.class_weight > 0 needs a classifier: set TVAEConfig.n_classes")
    state: dict[str, Any] = {"beta": finite_float("beta", recipe.beta)}

    def schedule(epoch: int) -> None:
        state["val_generator"] = torch.Generator().manual_seed(0)
        if not state["free_running"]:  # in the free-running phase the KL weight stays put
            state["beta"] = linear_kl_weight(epoch, warmup_epochs=recipe.warmup_epochs,
                                             beta_max=recipe.beta)  # fmt: skip

    step = make_step_fn(recipe, state)
    phases = [(recipe.epochs, recipe.lr, False)]  # (epochs, learning rate, free running)
    if recipe.free_running_epochs:
        phases.append((recipe.free_running_epochs, recipe.free_running_lr, True))
    history = None
    for epochs, lr, free_running in phases:
        state["free_running"] = free_running
        if free_running:
            state["beta"] = recipe.beta  # the full KL weight, whatever the annealing reached
        phase = fit(
            model,
            train_loader,
            step,
            epochs=epochs,
            optimizer=torch.optim.Adam(model.parameters(), lr=lr),
            val_loader=val_loader,
            device=device,
            clip_grad_norm=recipe.clip_grad_norm,
            on_epoch_start=schedule,
            progress=progress,
            desc="free-running" if free_running else "teacher-forced",
        )
        if history is None:
            history = phase
        else:
            for name, values in phase.metrics.items():
                history.metrics.setdefault(name, []).extend(values)
    model.eval()
    if model.config.learned_noise:  # the trained mean's noise, measured on the training data
        residuals = []
        for batch in train_loader:
            x, mask, _ = unpack_batch(batch)
            residuals.append(model.noise_residuals(
                x.to(model.device), None if mask is None else mask.to(model.device)))
        model.set_noise(torch.cat(residuals))
    return history
