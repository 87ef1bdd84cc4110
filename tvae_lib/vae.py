"""Variational autoencoders: the reparameterization trick, the Gaussian KL, an MLP VAE, and the
tools that keep a VAE's latent code alive (KL schedules, free bits, active units).

A VAE encodes ``x`` into a Gaussian ``q(z|x) = N(mu, diag(exp(logvar)))``, samples ``z`` from it
with :func:`reparameterize` (so gradients flow through the sample), decodes ``z`` into ``x_hat``
and minimises ``reconstruction + beta * KL(q(z|x) || N(0, I))``, the negative ELBO when
``beta = 1`` and the reconstruction term is a log-likelihood.

Shapes: B batch, F features (flattened input size), Z latent size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tvae_lib.checks import positive_int

__all__ = [
    "reparameterize",
    "kl_per_dimension",
    "kl_divergence",
    "free_bits_kl",
    "active_units",
    "linear_kl_weight",
    "cyclical_kl_weight",
    "MLPVAE",
    "vae_loss",
]


def _check_mu_logvar(mu: torch.Tensor, logvar: torch.Tensor) -> None:
    if not isinstance(mu, torch.Tensor) or not isinstance(logvar, torch.Tensor):
        raise TypeError(f"mu and logvar must be tensors, got {type(mu)} and {type(logvar)}")
    if mu.dim() != 2 or mu.shape != logvar.shape:
        raise ValueError(
            f"mu and logvar must both have shape (B, Z), got {tuple(mu.shape)} and "
            f"{tuple(logvar.shape)}"
        )


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sample ``z ~ N(mu, exp(logvar))`` as ``mu + sigma * eps`` with ``eps ~ N(0, I)``.

    The randomness lives in ``eps``, which does not depend on the parameters, so gradients
    reach ``mu`` and ``logvar`` through the sample.

    Args:
        mu: (B, Z) means.
        logvar: (B, Z) log-variances.
        generator: Optional generator for ``eps`` (reproducible samples).

    Returns:
        (B, Z) samples.
    """
    _check_mu_logvar(mu, logvar)
    if generator is None:
        eps = torch.randn_like(mu)  # (B, Z)
    else:  # a CPU generator keeps samples identical on every device
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
    return mu + torch.exp(0.5 * logvar) * eps  # (B, Z)


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, 1))`` for every sample and latent dimension.

    Closed form for two Gaussians: ``0.5 * (mu^2 + exp(logvar) - 1 - logvar)``.

    Args:
        mu: (B, Z) means.
        logvar: (B, Z) log-variances.

    Returns:
        (B, Z) non-negative KL values in nats.
    """
    _check_mu_logvar(mu, logvar)
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)  # (B, Z)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(q(z|x) || N(0, I))`` per sample: :func:`kl_per_dimension` summed over Z.

    Args:
        mu: (B, Z) means.
        logvar: (B, Z) log-variances.

    Returns:
        (B,) KL values in nats, one per sample.
    """
    return kl_per_dimension(mu, logvar).sum(dim=-1)  # (B,)


def free_bits_kl(mu: torch.Tensor, logvar: torch.Tensor, free_bits: float) -> torch.Tensor:
    """The KL term with free bits (Kingma et al., 2016): no pressure below ``free_bits`` nats.

    Each latent dimension's KL, averaged over the batch, is clamped from below at
    ``free_bits``; the loss then has zero gradient pushing a dimension's KL under that
    floor, so the encoder is free to use it.

    Args:
        mu: (B, Z) means.
        logvar: (B, Z) log-variances.
        free_bits: Floor per latent dimension, in nats (>= 0; 0 gives the plain KL).

    Returns:
        A scalar, the sum over Z of ``max(free_bits, mean over B of the KL)``.
    """
    if not isinstance(free_bits, (int, float)) or free_bits < 0:
        raise ValueError(f"free_bits must be a non-negative number, got {free_bits!r}")
    per_dim = kl_per_dimension(mu, logvar).mean(dim=0)  # (Z,)
    return per_dim.clamp(min=float(free_bits)).sum()


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> torch.Tensor:
    """Which latent dimensions the encoder uses (Burda et al., 2016).

    A dimension is active when its posterior mean varies across the data: ``Var_x(mu_z(x))``
    above ``threshold``. A collapsed dimension has ``mu`` equal to the prior's 0 for every x.

    Args:
        mu: (N, Z) posterior means of N inputs (N >= 2).
        threshold: Variance threshold (0.01 in Burda et al.).

    Returns:
        (Z,) bool, ``True`` for active dimensions; ``.sum()`` counts them.
    """
    if not isinstance(mu, torch.Tensor) or mu.dim() != 2 or mu.shape[0] < 2:
        got = tuple(mu.shape) if isinstance(mu, torch.Tensor) else type(mu).__name__
        raise ValueError(f"mu must have shape (N, Z) with N >= 2, got {got}")
    return mu.var(dim=0) > threshold  # (Z,)


def linear_kl_weight(epoch: int, *, warmup_epochs: int, beta_max: float = 1.0) -> float:
    """KL annealing (Bowman et al., 2016): the KL weight rises linearly from 0 to ``beta_max``.

    Args:
        epoch: 0-based epoch (or step).
        warmup_epochs: Epochs to reach ``beta_max`` (0 gives ``beta_max`` at once).
        beta_max: Final weight.

    Returns:
        ``beta_max * min(1, epoch / warmup_epochs)``.
    """
    if epoch < 0 or warmup_epochs < 0:
        raise ValueError(
            f"epoch and warmup_epochs must be >= 0, got {epoch!r} and {warmup_epochs!r}"
        )
    if warmup_epochs == 0:
        return float(beta_max)
    return float(beta_max) * min(1.0, epoch / warmup_epochs)


def cyclical_kl_weight(
    epoch: int, *, period: int, ramp_fraction: float = 0.5, beta_max: float = 1.0
) -> float:
    """Cyclical KL annealing (Fu et al., 2019): repeat a linear ramp every ``period`` epochs.

    Within each cycle the weight rises from 0 to ``beta_max`` over the first
    ``ramp_fraction * period`` epochs and then stays at ``beta_max``.

    Args:
        epoch: 0-based epoch (or step).
        period: Length of one cycle (>= 1).
        ramp_fraction: Share of the cycle spent ramping, in (0, 1].
        beta_max: The weight at the top of the ramp.

    Returns:
        The KL weight for ``epoch``.
    """
    if period < 1 or not 0 < ramp_fraction <= 1 or epoch < 0:
        raise ValueError(
            f"need period >= 1, 0 < ramp_fraction <= 1 and epoch >= 0, got period={period!r}, "
            f"ramp_fraction={ramp_fraction!r}, epoch={epoch!r}"
        )
    position = (epoch % period) / (period * ramp_fraction)
    return float(beta_max) * min(1.0, position)


class MLPVAE(nn.Module):
    """A VAE whose encoder and decoder are small multilayer perceptrons.

    Inputs of any shape (B, ...) are flattened to (B, F) with ``reshape``, so a last batch
    smaller than the others is fine (unlike ``x.view(batch_size, x_dim)``).

    Args:
        in_features: F, the number of values in one flattened input.
        hidden: Width of the hidden layers.
        latent_dim: Z, the size of the latent code.
        n_hidden_layers: Hidden layers in the encoder and in the decoder.

    Shape:
        - x: (B, ...) with F values per sample
        - output: ``(x_hat (B, F) unbounded, mu (B, Z), logvar (B, Z))``
    """

    def __init__(
        self, in_features: int, hidden: int = 128, latent_dim: int = 2, n_hidden_layers: int = 2
    ):
        super().__init__()
        for name, value in (
            ("in_features", in_features),
            ("hidden", hidden),
            ("latent_dim", latent_dim),
            ("n_hidden_layers", n_hidden_layers),
        ):
            positive_int(name, value)
        self.in_features = in_features
        self.latent_dim = latent_dim
        self.encoder = _mlp(in_features, hidden, n_hidden_layers)
        self.to_mu = nn.Linear(hidden, latent_dim)
        self.to_logvar = nn.Linear(hidden, latent_dim)
        self.decoder = nn.Sequential(
            _mlp(latent_dim, hidden, n_hidden_layers), nn.Linear(hidden, in_features)
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z|x)``: x (B, ...) -> ``(mu (B, Z), logvar (B, Z))``."""
        if x.dim() < 2 or x[0].numel() != self.in_features:
            raise ValueError(
                f"x must have shape (B, ...) with in_features={self.in_features} values per "
                f"sample, got {tuple(x.shape)}"
            )
        h = self.encoder(x.reshape(x.shape[0], -1))  # (B, hidden)
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``p(x|z)``'s mean (or logits): z (B, Z) -> (B, F)."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (B, Z={self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode, sample with :func:`reparameterize` in training (``mu`` in eval), decode."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar) if self.training else mu
        return self.decode(z), mu, logvar


def _mlp(in_features: int, hidden: int, n_layers: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Linear(in_features if i == 0 else hidden, hidden), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers)


def vae_loss(
    x_hat: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    *,
    beta: float = 1.0,
    free_bits: float = 0.0,
    recon: str = "mse_sum",
    mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The (beta-weighted) negative ELBO, averaged over the batch.

    Args:
        x_hat: (B, ...) reconstructions (logits for ``"bce"``).
        x: (B, ...) targets, same shape.
        mu: (B, Z) posterior means.
        logvar: (B, Z) posterior log-variances.
        beta: Weight of the KL term.
        free_bits: Per-dimension KL floor in nats (see :func:`free_bits_kl`); 0 = plain KL.
        recon: ``"mse_sum"`` squared error summed over a sample's values (the negative
            log-likelihood of a Gaussian with variance 1/2, up to a constant:
            twice that of a unit-variance one); ``"mse_mean"`` averaged over
            the values (the choice of the post *[Pytorch] Transformer-VAE 구현*, which shrinks the reconstruction term next to the
            KL); ``"bce"`` binary cross-entropy with logits, summed.
        mask: Optional bool (B, T) for (B, T, F) inputs, ``True`` at real steps: padded steps
            add nothing to the reconstruction term.

    Returns:
        ``{"loss", "recon", "kl", "mse"}`` scalars: the objective, its reconstruction term,
        the plain KL per sample (averaged over the batch, whatever ``free_bits``) and the mean
        squared error per real value (for reporting).
    """
    if x_hat.shape != x.shape:
        raise ValueError(
            f"x_hat and x must have the same shape, got {tuple(x_hat.shape)} and {tuple(x.shape)}"
        )
    if recon not in {"mse_sum", "mse_mean", "bce"}:
        raise ValueError(f"recon must be 'mse_sum', 'mse_mean' or 'bce', got {recon!r}")
    if mask is None:
        real = torch.ones_like(x, dtype=torch.bool)
    else:
        if mask.dtype != torch.bool or x.dim() != 3 or mask.shape != x.shape[:2]:
            raise ValueError(
                f"mask must be a bool (B, T) tensor for x of shape (B, T, F), got "
                f"{mask.dtype} {tuple(mask.shape)} for x {tuple(x.shape)}"
            )
        real = mask[..., None].expand_as(x)  # (B, T, F)
        # where() before any arithmetic: a padded value (even NaN) gets neither a say in the
        # loss nor a gradient (multiplying by a 0/1 weight would turn NaN into NaN)
        x_hat, x = torch.where(real, x_hat, 0.0), torch.where(real, x, 0.0)
    if recon == "bce":
        errors = F.binary_cross_entropy_with_logits(x_hat, x, reduction="none")
    else:
        errors = (x_hat - x).pow(2)
    squared = (x_hat - x).pow(2) if recon == "bce" else errors
    errors, squared = torch.where(real, errors, 0.0), torch.where(real, squared, 0.0)
    per_sample = errors.reshape(x.shape[0], -1).sum(dim=1)  # (B,)
    n_values = real.reshape(x.shape[0], -1).sum(dim=1).to(x.dtype)  # (B,)
    mse = squared.sum() / n_values.sum()
    recon_term = (per_sample / n_values).mean() if recon == "mse_mean" else per_sample.mean()
    kl = kl_divergence(mu, logvar).mean()
    kl_term = free_bits_kl(mu, logvar, free_bits) if free_bits > 0 else kl
    return {"loss": recon_term + beta * kl_term, "recon": recon_term, "kl": kl, "mse": mse}
