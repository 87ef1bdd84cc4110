"""Train the chapter-7 Transformer-VAEs on the door cycles and save their checkpoints.

Usage (from the repository root; ``make checkpoints`` runs the first line)::

    python -m tvae_lib.train_tvae                  # every run below
    python -m tvae_lib.train_tvae --runs final     # one run

The command always trains in the reproducible numeric mode (:mod:`tvae_lib.numerics`): started
outside it, it restarts itself inside, so a run gives the same weights on any x86-64 CPU with
AVX2, whatever its core count.

The committed checkpoints predate the mode: they were trained on one thread with the machine's
own kernels, so this command now gives weights that differ from them in the last bits. The
chapter-7 numbers computed from the final model stay within ``make check-numbers``' tolerances
(free-running MSE 0.0057 against 0.0060, 5-NN accuracy 0.960 against 0.962), but the 6-epoch
remedy runs sit close to their thresholds (``input_dropout`` then keeps one unit active), which
is why the committed files are kept until chapter 7 is retrained over several seeds.

Each run writes ``checkpoints/tvae_<run>.pt`` (config, weights and the training history, see
:func:`tvae_lib.tvae.save_checkpoint`). Chapter 7 loads these files instead of training for
longer than its time budget allows; ``tests/test_tvae.py`` checks that they load into the
current code and reproduce the numbers the chapter quotes.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from tvae_lib.data import load_door_cycles
from tvae_lib.decoding import rollout_tvae
from tvae_lib.numerics import MODE_VARIABLE, describe, mode_environment
from tvae_lib.sequences import PaddedBatch
from tvae_lib.training import fit
from tvae_lib.tvae import TransformerVAE, TVAEConfig, save_checkpoint
from tvae_lib.utils import seed_everything
from tvae_lib.vae import (
    active_units,
    kl_per_dimension,
    linear_kl_weight,
    reparameterize,
    vae_loss,
)

__all__ = ["Run", "RUNS", "make_step_fn", "make_loaders", "train_run", "validation_metrics", "main"]


@dataclass
class Run:
    """One training recipe: a model config plus the objective's knobs."""

    config: TVAEConfig = field(default_factory=TVAEConfig)  # the model's sizes
    recon: str = "mse_mean"  # reconstruction term, see tvae_lib.vae.vae_loss
    beta: float = 1.0  # final KL weight
    warmup_epochs: int = 0  # KL annealing: epochs for the weight to rise from 0 to beta
    free_bits: float = 0.0  # per-dimension KL floor in nats
    epochs: int = 20  # passes over the 1,798 training cycles
    lr: float = 2e-3  # Adam's learning rate
    batch_size: int = 64  # cycles per step
    variable_length: bool = False  # train on the variable-length cycles with padding masks
    class_weight: float = 0.0  # weight of the classifier's cross-entropy (needs n_classes)
    free_running_epochs: int = 0  # then: epochs trained on the decoder's own outputs
    free_running_lr: float = 5e-4  # Adam's learning rate for those epochs

    def __post_init__(self) -> None:
        if self.class_weight and not self.config.n_classes:
            raise ValueError("class_weight > 0 needs a classifier: set config.n_classes")


_DROPOUT = TVAEConfig(decoder_input_dropout=0.8)
# the final model's encoder: a convolutional embedding, mean and max pooling, a class head
_FINAL = TVAEConfig(decoder_input_dropout=0.8, embedding="conv", pooling="mean_max", n_classes=4)

RUNS: dict[str, Run] = {
    # the seed's objective: MSE averaged per value + KL, teacher forcing -> posterior collapse
    "collapsed": Run(epochs=6),
    # remedy 1: a Gaussian likelihood summed over the 327 values, KL annealed in over 5 epochs
    "kl_annealing": Run(recon="mse_sum", warmup_epochs=5, epochs=6),
    # remedy 2: summed likelihood + free bits (no KL pressure below 1 nat per dimension)
    "free_bits": Run(recon="mse_sum", free_bits=1.0, epochs=6),
    # remedy 3: summed likelihood + decoder-input dropout (the decoder must use z)
    "input_dropout": Run(config=_DROPOUT, recon="mse_sum", epochs=6),
    # remedy 4: summed likelihood with a KL weight of 0.1 (a beta-VAE with beta < 1)
    "kl_weight": Run(recon="mse_sum", beta=0.1, epochs=6),
    # remedies 3 and 4 together: the final recipe, for 6 epochs like the others
    "dropout_kl_weight": Run(config=_DROPOUT, recon="mse_sum", beta=0.1, epochs=6),
    # the final model: dropout_kl_weight with the _FINAL encoder, a label-guided latent and a
    # KL weight of 0.03; 20 epochs of teacher forcing, then 24 free-running (exposure bias)
    "final": Run(config=_FINAL, recon="mse_sum", beta=0.03, epochs=20, class_weight=5.0,
                 free_running_epochs=24, free_running_lr=1e-3),
    # the final recipe on variable-length cycles, padding masked out
    "variable_length": Run(config=_FINAL, recon="mse_sum", beta=0.03, epochs=20,
                           class_weight=5.0, free_running_epochs=24, free_running_lr=1e-3,
                           variable_length=True),
}  # fmt: skip


def make_step_fn(run: Run, state: dict[str, float]):
    """The ``step_fn`` for :func:`tvae_lib.training.fit`.

    ``state["beta"]`` is the KL weight; with ``state["free_running"]`` true, the
    reconstruction is decoded from the sampled z free-running
    (:func:`~tvae_lib.decoding.rollout_tvae`) instead of with teacher forcing. With
    ``run.class_weight > 0`` the classifier's cross-entropy on ``mu`` joins the loss
    (logged as ``class_ce``). Batches are ``(x, labels)`` tuples (fixed length) or
    :class:`PaddedBatch` (variable length).
    """

    def step(model: TransformerVAE, batch) -> dict[str, torch.Tensor]:
        if isinstance(batch, PaddedBatch):
            x, mask, labels = batch.x, batch.mask, batch.labels
        else:
            (x, labels), mask = batch, None
        if state.get("free_running"):
            mu, logvar = model.encode(x, mask)
            z = reparameterize(mu, logvar) if model.training else mu  # as in forward()
            x_hat = rollout_tvae(model, z, x.shape[1])
        else:
            x_hat, mu, logvar = model(x, mask)
        out = vae_loss(
            x_hat, x, mu, logvar, beta=state["beta"], free_bits=run.free_bits,
            recon=run.recon, mask=mask,
        )  # fmt: skip
        if run.class_weight:
            out["class_ce"] = F.cross_entropy(model.classify(mu), labels)
            out["loss"] = out["loss"] + run.class_weight * out["class_ce"]
        return out

    return step


def make_loaders(
    variable_length: bool, batch_size: int, generator: torch.Generator
) -> tuple[DataLoader, DataLoader]:
    """Training (shuffled) and validation loaders over the door cycles."""
    train, val = load_door_cycles(variable_length=variable_length)
    if not variable_length:
        (x_train, y_train, _), (x_val, y_val, _) = train.tensors(), val.tensors()
        return (
            DataLoader(TensorDataset(x_train, y_train), batch_size, shuffle=True,
                       generator=generator),
            DataLoader(TensorDataset(x_val, y_val), batch_size=256),
        )  # fmt: skip
    train_set, val_set = train.dataset(), val.dataset()
    return (
        DataLoader(train_set, batch_size, shuffle=True, generator=generator,
                   collate_fn=train_set.collate),
        DataLoader(val_set, batch_size=256, collate_fn=val_set.collate),
    )  # fmt: skip


def train_run(run: Run, device: torch.device | str = "cpu", progress: bool = True):
    """Train one run from seed 0: ``run.epochs`` with teacher forcing, then
    ``run.free_running_epochs`` on the decoder's own outputs.

    Returns:
        ``(model, history)``; the history runs over all epochs of both phases.
    """
    generator = seed_everything(0)
    model = TransformerVAE(run.config).to(device)
    train_loader, val_loader = make_loaders(run.variable_length, run.batch_size, generator)
    state = {"beta": run.beta}

    def schedule(epoch: int) -> None:
        state["beta"] = linear_kl_weight(epoch, warmup_epochs=run.warmup_epochs,
                                         beta_max=run.beta)  # fmt: skip

    step = make_step_fn(run, state)
    phases = [(run.epochs, run.lr, False)]  # (epochs, learning rate, free running)
    if run.free_running_epochs:
        phases.append((run.free_running_epochs, run.free_running_lr, True))
    history = None
    for epochs, lr, free_running in phases:
        state["free_running"] = free_running
        if free_running:
            state["beta"] = run.beta  # the full KL weight, whatever the annealing reached
        phase = fit(
            model,
            train_loader,
            step,
            epochs=epochs,
            optimizer=torch.optim.Adam(model.parameters(), lr=lr),
            val_loader=val_loader,
            device=device,
            clip_grad_norm=1.0,
            on_epoch_start=None if free_running else schedule,  # the KL weight stays put
            progress=progress,
        )
        if history is None:
            history = phase
        else:
            for name, values in phase.metrics.items():
                history.metrics[name] += values
    return model.eval(), history


@torch.no_grad()
def validation_metrics(
    model: TransformerVAE,
    x: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    free_running: bool = True,
) -> dict[str, float]:
    """The numbers chapter 7 judges a model by, on validation cycles.

    Args:
        model: A trained model (put in evaluation mode).
        x: (N, T, F) cycles, on the model's device.
        labels: (N,) class labels (for the k-nearest-neighbour accuracy).
        mask: Optional (N, T) bool, ``True`` at real steps.
        free_running: Also decode autoregressively from ``mu`` (the slow part).

    Returns:
        ``mse_free_running`` (autoregressive from ``mu``; NaN if not computed),
        ``mse_teacher_forced``, ``kl`` (per cycle), ``active_units`` (``Var(mu) > 0.01``),
        ``knn_accuracy`` (5-nearest-neighbour classifier on ``mu``, 5-fold cross-validated)
        and the per-dimension ``kl_per_dim`` and ``mu_var`` (lists).
    """
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    model.eval()
    mu, logvar = model.encode(x, mask)  # (N, Z) each
    weights = torch.ones_like(x) if mask is None else mask[..., None].expand_as(x).to(x.dtype)

    def mse(x_hat: torch.Tensor) -> float:
        return float(((x_hat - x).pow(2) * weights).sum() / weights.sum())

    knn = KNeighborsClassifier(n_neighbors=5)
    per_dim = kl_per_dimension(mu, logvar).mean(dim=0)  # (Z,)
    return {
        "mse_free_running": (
            mse(model.decode_autoregressive(mu, x.shape[1])) if free_running else float("nan")
        ),
        "mse_teacher_forced": mse(model.decode(mu, x, mask)),
        "kl": float(per_dim.sum()),
        "active_units": int(active_units(mu).sum()),
        "knn_accuracy": float(
            cross_val_score(knn, mu.cpu().numpy(), labels.cpu().numpy(), cv=5).mean()
        ),
        "kl_per_dim": per_dim.tolist(),
        "mu_var": mu.var(dim=0).tolist(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated run names")
    parser.add_argument("--out", default="checkpoints", help="folder for the .pt files")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    print(f"training in the {describe()}", flush=True)
    for name in args.runs.split(","):
        if name not in RUNS:
            raise SystemExit(f"unknown run {name!r}; choose from {sorted(RUNS)}")
        model, history = train_run(RUNS[name], device=args.device)
        path = save_checkpoint(
            model, Path(args.out) / f"tvae_{name}.pt",
            metadata={"run": name, "history": history.metrics},
        )  # fmt: skip
        print(f"{name}: {history.last()} -> {path}", flush=True)


if __name__ == "__main__":
    if os.environ.get(MODE_VARIABLE) != "reproducible":  # not restarted yet
        # the libraries read the mode's settings when they load: restart inside it
        os.execvpe(sys.executable, sys.orig_argv, mode_environment())
    main()
