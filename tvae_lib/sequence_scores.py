"""Anomaly scores per sequence: from a trained Transformer-VAE, and from any forecaster.

A model of normal sequences flags a sequence it explains badly. *How* it is asked matters:

- **teacher-forced error**: the decoder predicts each step from the true past and ``z = mu``.
  A strong autoregressive decoder can do this well while ignoring z (chapter 7), so this
  score mostly measures one-step predictability, what a plain next-step forecaster measures.
- **free-running error**: the decoder rebuilds the whole sequence from ``mu`` alone, each
  prediction fed back as the next input. Everything it knows about the sequence went through
  the code, so this score asks whether the sequence is one the code can describe.
- **negative ELBO**: the model's own bound on ``-log p(x)``: the expected teacher-forced
  squared error over codes sampled from ``q(z|x)`` plus the KL of ``q(z|x)`` to the prior. A
  sequence whose code lands far out in the latent space pays in the KL term.
- **noise likelihood** (models with a learned noise, ``TVAEConfig(learned_noise=True)``): the
  Gaussian negative log-likelihood of the sequence under the free-running mean from ``mu``
  plus the noise's mean, with the noise's variance, both fitted per step and channel. Unlike
  the squared error, it weighs each residual by the noise normal sequences show there, so a
  deviation at a step that is usually quiet counts more than one at a step that is usually
  noisy.

Each score is per real value (a sequence's total divided by its L F real values), so
sequences of different lengths are comparable, and padded steps never count: whatever they
hold (zeros, NaN) does not reach a score. :func:`per_sequence_mse` scores any predictions,
e.g. those of chapter 4's causal next-step forecaster, the same way.

Shapes: N sequences, T steps, F channels, Z latent units.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tvae_lib import checks
from tvae_lib.tvae import TransformerVAE
from tvae_lib.vae import kl_divergence

__all__ = ["per_sequence_mse", "tvae_sequence_scores"]


def _real_steps(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(N, T) bool, ``True`` at real steps; checks ``mask`` against ``x``."""
    if mask is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    return checks.bool_mask("mask", mask, tuple(x.shape[:2])).to(x.device)


def _sse(prediction: torch.Tensor, target: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """(N,) squared error summed over each sequence's real steps and channels."""
    error = torch.where(real[..., None], prediction - target, 0.0)  # NaN padding never counts
    return error.pow(2).sum(dim=(1, 2))


def per_sequence_mse(prediction, target, mask=None) -> np.ndarray:
    """Mean squared error of each sequence over its real steps (a length-fair anomaly score).

    Args:
        prediction: (N, T, F) predictions (array or tensor), e.g. a next-step forecaster's.
        target: (N, T, F) the sequences.
        mask: Optional (N, T) bool, ``True`` at real steps.

    Returns:
        (N,) float64 errors per real value.
    """
    prediction = torch.as_tensor(prediction)
    target = torch.as_tensor(target)
    if prediction.dim() != 3 or prediction.shape != target.shape:
        raise ValueError(f"prediction and target must share a shape (N, T, F), got "
                         f"{tuple(prediction.shape)} and {tuple(target.shape)}")  # fmt: skip
    real = _real_steps(target, None if mask is None else torch.as_tensor(mask))
    values = real.sum(dim=1) * target.shape[2]  # (N,)
    if (values == 0).any():
        raise ValueError("every sequence needs at least one real step in mask")
    return (_sse(prediction.double(), target.double(), real) / values).cpu().numpy()


@torch.no_grad()
def tvae_sequence_scores(
    model: TransformerVAE, x: torch.Tensor, mask: torch.Tensor | None = None, *,
    n_samples: int = 8, seed: int = 0, batch_size: int | None = None,
) -> dict[str, np.ndarray]:
    """Four or five anomaly scores per sequence from a trained Transformer-VAE, in evaluation mode.

    Args:
        model: The model (its training/evaluation mode is restored afterwards).
        x: (N, T, F) sequences on the model's device.
        mask: Optional (N, T) bool, ``True`` at real steps.
        n_samples: Codes drawn from ``q(z|x)`` per sequence for the ELBO's expectation.
        seed: Seed of those draws (a CPU generator: the same on every device).
        batch_size: Sequences per forward pass (``None``: all at once).

    Returns:
        ``{"teacher_forced", "free_running", "neg_elbo", "kl"}``, and ``"noise_nll"`` (nats
        per real value) for a model with a learned noise, each (N,) float64: the
        errors per real value of teacher-forced and free-running decoding from ``mu``, the
        one-sample-average negative ELBO per real value (summed squared error, the Gaussian
        likelihood with variance 1/2 of :func:`tvae_lib.vae.vae_loss`, plus the KL, divided
        by the L F real values), and the KL in nats per sequence.
    """
    n_samples = checks.positive_int("n_samples", n_samples)
    real = _real_steps(x, mask)
    if (real.sum(dim=1) == 0).any():
        raise ValueError("every sequence needs at least one real step in mask")
    generator = torch.Generator().manual_seed(checks.non_negative_int("seed", seed))
    # drawn at once, so a sequence gets the same codes whatever the batch size
    noise = torch.randn(n_samples, len(x), model.config.latent_dim, generator=generator)
    step = len(x) if batch_size is None else checks.positive_int("batch_size", batch_size)
    variance = model.noise_variance(x.shape[1]) if model.config.learned_noise else None
    offset = model.noise_mean[: x.shape[1]].double() if variance is not None else None
    was_training = model.training
    model.eval()
    parts = []
    try:
        for start in range(0, len(x), step):
            xb, rb = x[start : start + step], real[start : start + step]
            mb = None if mask is None else rb
            target = torch.where(rb[..., None], xb, 0.0)  # (B, T, F)
            mu, logvar = model.encode(xb, mb)  # (B, Z) each
            sse = torch.zeros(len(xb), dtype=torch.float64, device=x.device)
            for eps in noise[:, start : start + step].to(mu):  # (B, Z) per sample
                z = mu + torch.exp(0.5 * logvar) * eps
                sse += _sse(model.decode(z, xb, mb), target, rb).double()
            free = model.free_run(mu, xb.shape[1])  # (B, T, F)
            parts.append({
                "teacher_forced": _sse(model.decode(mu, xb, mb), target, rb).double(),
                "free_running": _sse(free, target, rb).double(),
                "expected_sse": sse / n_samples,
                "kl": kl_divergence(mu, logvar).double(),
            })  # fmt: skip
            if variance is not None:  # sum of 0.5 (log 2 pi var + residual^2 / var)
                var = variance.double()  # (T, F)
                residual = target - free.double() - offset  # (B, T, F)
                terms = torch.log(2 * math.pi * var) + residual**2 / var
                terms = torch.where(rb[..., None], 0.5 * terms, 0.0)
                parts[-1]["noise_nll"] = terms.sum(dim=(1, 2))
    finally:
        model.train(was_training)
    joined = {key: torch.cat([part[key] for part in parts]) for key in parts[0]}
    values = real.sum(dim=1).double() * x.shape[2]  # (N,) real values per sequence
    scores = {
        "teacher_forced": (joined["teacher_forced"] / values).cpu().numpy(),
        "free_running": (joined["free_running"] / values).cpu().numpy(),
        "neg_elbo": ((joined["expected_sse"] + joined["kl"]) / values).cpu().numpy(),
        "kl": joined["kl"].cpu().numpy(),
    }
    if variance is not None:
        scores["noise_nll"] = (joined["noise_nll"] / values).cpu().numpy()
    return scores
