"""The Transformer-VAE: a Transformer encoder into a Gaussian latent code, and an
autoregressive Transformer decoder conditioned on that code.

The data flow, shape by shape (B batch, T steps, F channels, D d_model, Z latent size):

1. ``input_proj``: x (B, T, F) -> (B, T, D), then the sinusoidal positional code. A linear
   map of each step (``embedding="linear"``) or a convolution over three neighbouring steps
   (``embedding="conv"``), which sees a step's change as well as its value;
2. ``encoder``: a stack of :class:`~tvae_lib.transformer.EncoderLayer` -> (B, T, D), padding
   masked out of the attention;
3. pooling over the real (non-padded) steps: their mean -> (B, D) (``pooling="mean"``), or
   their mean and their maximum side by side -> (B, 2 D) (``pooling="mean_max"``), so that a
   short local event is not averaged away;
4. ``to_mu``, ``to_logvar`` -> (B, Z) each; :func:`~tvae_lib.vae.reparameterize` -> z (B, Z);
   optionally ``classifier`` maps ``mu`` to class logits (``n_classes > 0``);
5. ``latent_proj``: z -> one memory position (B, 1, D) for the decoder's cross-attention;
6. ``decoder``: a stack of :class:`~tvae_lib.transformer.DecoderLayer` under the causal mask,
   fed the shifted input (a zero start vector, then x_0 .. x_{T-2}) in training (teacher
   forcing) or its own outputs one step at a time (:meth:`TransformerVAE.free_run`, through the
   key/value cache by default);
7. ``output_proj``: (B, T, D) -> x_hat (B, T, F), the decoder's mean;
8. optionally (``learned_noise=True``), a noise per step and channel, fitted after training
   (:meth:`TransformerVAE.fit_noise`) and sampled by ``generate``: its variance, and its
   mean, the offset the decoder's mean misses the data by at every step (both (max_len, F)).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tvae_lib import checks
from tvae_lib.checks import fraction, lengths_tensor, non_negative_int, one_of, positive_int
from tvae_lib.decoding import _runs_plain
from tvae_lib.decoding import generate as generate_steps
from tvae_lib.masks import causal_mask, masked_mean, padding_mask
from tvae_lib.positional import SinusoidalPositionalEncoding
from tvae_lib.transformer import Decoder, DecoderLayer, Encoder, EncoderLayer
from tvae_lib.vae import reparameterize

__all__ = ["TVAEConfig", "TransformerVAE"]


@dataclass
class TVAEConfig:
    """Sizes of a :class:`TransformerVAE`, and the choices that keep its latent code in use.

    The defaults are the book's working design without labels: decoder-input dropout of 0.8
    (the decoder cannot lean on the true past alone and must read z), a convolutional
    embedding and mean+max pooling. With :class:`tvae_lib.recipes.Recipe`'s defaults they train
    a model whose latent units stay active on new data; chapter 7 shows what each choice buys.
    Set ``n_features`` to your channel count and ``max_len`` to at least your longest sequence.
    """

    n_features: int = 3  # F, channels per time step
    d_model: int = 64  # D, width of every Transformer layer
    n_heads: int = 4  # H, attention heads (d_model must be a multiple)
    d_ff: int = 128  # hidden width of each position-wise feed-forward block
    n_encoder_layers: int = 2  # encoder depth
    n_decoder_layers: int = 2  # decoder depth
    latent_dim: int = 2  # Z, size of the latent code
    max_len: int = 128  # longest sequence the positional table covers
    dropout: float = 0.0  # dropout inside the Transformer layers
    decoder_input_dropout: float = 0.8  # training only: share of decoder input steps zeroed
    embedding: str = "conv"  # encoder input: "linear" per step or "conv" over 3 steps
    pooling: str = "mean_max"  # over time: "mean", or "mean_max" (mean and maximum side by side)
    n_classes: int = 0  # > 0 adds a classifier head on mu (for a label-guided latent)
    learned_noise: bool = False  # a noise mean and variance per step and channel, fitted later

    def __post_init__(self) -> None:
        for name in ("n_features", "d_model", "n_heads", "d_ff", "n_encoder_layers",
                     "n_decoder_layers", "latent_dim", "max_len"):  # fmt: skip
            positive_int(name, getattr(self, name))
        if self.d_model % self.n_heads != 0:
            raise ValueError(
                f"d_model must be a multiple of n_heads, got {self.d_model} and {self.n_heads}"
            )
        for name in ("dropout", "decoder_input_dropout"):
            fraction(name, getattr(self, name))
        one_of("embedding", self.embedding, ("linear", "conv"))
        one_of("pooling", self.pooling, ("mean", "mean_max"))
        if not isinstance(self.learned_noise, bool):
            raise TypeError(f"learned_noise must be True or False, got {self.learned_noise!r}")
        if non_negative_int("n_classes", self.n_classes) == 1:
            raise ValueError("n_classes must be 0 (no classifier) or an int >= 2, got 1")


class TransformerVAE(nn.Module):
    """A VAE whose encoder and decoder are Transformers; see the module docstring.

    Args:
        config: The sizes.

    Shape:
        - x: (B, T, F) with T <= ``config.max_len``, the dtype of the model's weights
        - mask: optional (B, T) bool, ``True`` at real steps (padding at the end); whatever
          the padded steps hold (zeros, NaN, 1e20) never reaches a real step's result
        - output of ``forward``: ``(x_hat (B, T, F), mu (B, Z), logvar (B, Z))``
    """

    def __init__(self, config: TVAEConfig | None = None):
        super().__init__()
        config = config or TVAEConfig()
        if not isinstance(config, TVAEConfig):
            raise TypeError(f"config must be a TVAEConfig, got {type(config).__name__}")
        self.config = config
        d_model, n_heads, d_ff, dropout = config.d_model, config.n_heads, config.d_ff, config.dropout
        if config.embedding == "conv":  # each step embedded with its two neighbours
            self.input_proj = nn.Conv1d(config.n_features, d_model, kernel_size=3, padding=1)
        else:
            self.input_proj = nn.Linear(config.n_features, d_model)
        self.positional = SinusoidalPositionalEncoding(d_model, max_len=config.max_len)
        self.encoder = Encoder(
            EncoderLayer(d_model, n_heads, d_ff, dropout=dropout), config.n_encoder_layers
        )
        pooled = 2 * d_model if config.pooling == "mean_max" else d_model
        self.to_mu = nn.Linear(pooled, config.latent_dim)
        self.to_logvar = nn.Linear(pooled, config.latent_dim)
        if config.n_classes:
            self.classifier = nn.Sequential(
                nn.Linear(config.latent_dim, 32), nn.GELU(), nn.Linear(32, config.n_classes)
            )
        self.latent_proj = nn.Linear(config.latent_dim, d_model)
        self.target_proj = nn.Linear(config.n_features, d_model)
        self.decoder = Decoder(
            DecoderLayer(d_model, n_heads, d_ff, dropout=dropout), config.n_decoder_layers
        )
        self.output_proj = nn.Linear(d_model, config.n_features)
        self.register_buffer("causal", causal_mask(config.max_len), persistent=False)
        if config.learned_noise:  # NaN until fit_noise (no random draw: the weights above
            # are the same with or without it)
            nan = torch.full((config.max_len, config.n_features), float("nan"))
            self.register_buffer("noise_var", nan)  # (max_len, F)
            self.register_buffer("noise_mean", nan.clone())  # (max_len, F)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the weights (inputs must have it too)."""
        return self.output_proj.weight.dtype

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return self.output_proj.weight.device

    def _check(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Validate x and mask; return x with its padded steps zeroed (they cannot leak)."""
        return checks.sequence_batch("x", x, mask, self.config.n_features, self.config.max_len,
                                     self.dtype)  # fmt: skip

    def _check_z(self, z: torch.Tensor) -> None:
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"z must have shape (B, Z={self.config.latent_dim}), got {got}")

    def encode(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z|x)``: x (B, T, F) and mask (B, T) -> ``(mu (B, Z), logvar (B, Z))``."""
        x = self._check(x, mask)
        if self.config.embedding == "conv":  # padding is zero, as before the start
            h = self.input_proj(x.transpose(1, 2)).transpose(1, 2)  # (B, F, T) -> (B, T, D)
        else:
            h = self.input_proj(x)  # (B, T, D)
        h = self.encoder(self.positional(h), key_padding_mask=mask)  # (B, T, D)
        if mask is None:
            pooled = h.mean(dim=1)  # (B, D)
        else:
            pooled = masked_mean(h, mask)  # (B, D), padding ignored
        if self.config.pooling == "mean_max":
            if mask is not None:
                h = h.masked_fill(~mask[..., None], float("-inf"))  # padding never the maximum
            pooled = torch.cat([pooled, h.amax(dim=1)], dim=-1)  # (B, 2 D)
        return self.to_mu(pooled), self.to_logvar(pooled)

    def classify(self, mu: torch.Tensor) -> torch.Tensor:
        """Class logits (B, n_classes) from latent means ``mu`` (B, Z); needs ``n_classes > 0``."""
        if not self.config.n_classes:
            raise ValueError(
                "this model has no classifier: build it with TVAEConfig(n_classes=...)"
            )
        self._check_z(mu)
        return self.classifier(mu)

    def memory(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's memory: z (B, Z) -> one position (B, 1, D).

        Repeating it over T positions (as the post *[Pytorch] Transformer-VAE 구현* does) gives the same cross-attention
        output when no positional code is added to the memory, at T times the cost.
        """
        self._check_z(z)
        return self.latent_proj(z)[:, None, :]  # (B, 1, D)

    def _embed_targets(self, inputs: torch.Tensor, offset: int) -> torch.Tensor:
        """Decoder inputs (B, L, F) at positions offset.. -> (B, L, D)."""
        return self.positional(self.target_proj(inputs), offset=offset)

    def decode(
        self,
        z: torch.Tensor,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        input_dropout: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Teacher-forced decoding: predict x_t from z and the true x_0 .. x_{t-1}.

        The decoder's input is x shifted right by one step behind a zero start vector. In
        training, ``config.decoder_input_dropout`` of the input steps are zeroed, so the
        decoder cannot rely on the past alone and must use ``z``.

        Args:
            z: (B, Z) latent codes.
            x: (B, T, F) target sequences.
            mask: Optional (B, T) bool, ``True`` at real steps.
            input_dropout: Share of input steps to zero, overriding the default
                (``config.decoder_input_dropout`` in training, 0 in evaluation); a validation
                loss comparable with the training loss uses the training rate.
            generator: Optional CPU generator for which steps are dropped.

        Returns:
            (B, T, F) predictions (padded steps hold whatever the decoder made of zeros).
        """
        x = self._check(x, mask)
        inputs = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)  # (B, T, F)
        if input_dropout is None:
            p = self.config.decoder_input_dropout if self.training else 0.0
        else:
            p = fraction("input_dropout", input_dropout)
        if p > 0:
            if generator is None:
                keep = torch.rand(x.shape[:2], device=x.device) >= p  # (B, T)
            else:
                keep = (torch.rand(x.shape[:2], generator=generator) >= p).to(x.device)
            keep[:, 0] = True  # the start vector is zero anyway
            inputs = inputs * keep[..., None].to(x.dtype)  # (B, T, F)
        length = x.shape[1]
        h = self.decoder(
            self._embed_targets(inputs, 0), self.memory(z),
            self_attn_mask=self.causal[:length, :length], key_padding_mask=mask,
        )  # fmt: skip
        return self.output_proj(h)  # (B, T, F)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode, sample z (``mu`` in evaluation mode), decode with teacher forcing.

        Returns:
            ``(x_hat (B, T, F), mu (B, Z), logvar (B, Z))``.
        """
        mu, logvar = self.encode(x, mask)
        z = reparameterize(mu, logvar) if self.training else mu
        return self.decode(z, x, mask), mu, logvar

    def free_run(self, z: torch.Tensor, length: int, cached: bool = True) -> torch.Tensor:
        """Free-running decoding from ``z``: each prediction becomes the next step's input.

        The one free-running entry point, used to generate, to reconstruct without the true
        past, and to train on the decoder's own outputs: under ``torch.no_grad()`` it records
        nothing; with autograd on, a loss on its result trains the decoder on the inputs it
        will see at inference (the cure for exposure bias). The key/value cache
        (``cached=True``) processes one position per step; ``cached=False`` re-runs the decoder
        over the whole prefix at every step (the naive loop, for comparison). The model's
        training/evaluation mode is left as it is.

        Args:
            z: (B, Z) latent codes.
            length: Number of steps T to decode, at most ``config.max_len``.
            cached: Use the key/value cache.

        Returns:
            (B, T, F) decoded sequences.
        """
        self._check_z(z)
        length = checks.sequence_length(length, self.config.max_len)
        if z.dtype != self.dtype:
            raise TypeError(f"z has dtype {z.dtype} but the model's weights are {self.dtype}")
        start = torch.zeros(z.shape[0], 1, self.config.n_features, dtype=z.dtype, device=z.device)
        embed, project = self._step_functions()
        return generate_steps(self.decoder, self.memory(z), start, length,
                              embed=embed, project=project, cached=cached)  # fmt: skip

    def _step_functions(self) -> tuple[Callable[[torch.Tensor, int], torch.Tensor], Callable]:
        """``free_run``'s ``embed`` and ``project``: the modules' own arithmetic without their
        calls (the same bits and gradients, a few percent of a cached run's time), unless a
        hook or an active dropout needs the modules themselves."""
        modules = (self.target_proj, self.positional, self.output_proj)
        if not _runs_plain(*modules):
            return self._embed_targets, self.output_proj
        weight, bias, table = self.target_proj.weight, self.target_proj.bias, self.positional.table

        def embed(inputs: torch.Tensor, offset: int) -> torch.Tensor:  # _embed_targets' sums
            return F.linear(inputs, weight, bias) + table[offset : offset + inputs.shape[1]].to(
                inputs.dtype
            )  # (B, L, D)

        return embed, functools.partial(F.linear, weight=self.output_proj.weight,
                                        bias=self.output_proj.bias)  # fmt: skip

    @torch.no_grad()
    def reconstruct(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, free_running: bool = True
    ) -> torch.Tensor:
        """Reconstruct x from its posterior mean ``mu``, in evaluation mode.

        Args:
            x: (B, T, F) sequences.
            mask: Optional (B, T) bool, ``True`` at real steps.
            free_running: Decode autoregressively from ``mu`` alone (``True``) or with
                teacher forcing on x (``False``).

        Returns:
            (B, T, F) reconstructions, zero at padded steps.
        """
        was_training = self.training
        self.eval()
        try:
            mu, _ = self.encode(x, mask)
            out = self.free_run(mu, x.shape[1]) if free_running else self.decode(mu, x, mask)
        finally:
            self.train(was_training)
        return out if mask is None else out.masked_fill(~mask[..., None], 0.0)

    @torch.no_grad()
    def generate(
        self,
        n: int,
        length: int | None = None,
        *,
        lengths: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        noise: bool | None = None,
        z: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decode ``n`` codes drawn from the prior ``N(0, I)`` (or given) into new sequences.

        A VAE trained with a small KL weight leaves parts of the prior that no training code
        visits, and codes drawn there decode into sequences unlike the data. Codes drawn from
        a density fitted to the training codes (e.g. scikit-learn's ``GaussianMixture`` on
        ``mu``, ex-post density estimation) avoid them: pass them as ``z``.

        Free-running decoding gives the decoder's mean, a smooth sequence; a model with a
        fitted noise (``TVAEConfig(learned_noise=True)``, :meth:`fit_noise`) then adds a draw
        of it at every step and channel, as the data carry sensor noise: the noise's mean
        (the offset the decoder's mean misses the training data by at that step) and a
        Gaussian draw of its variance. It is added to the decoded sequence, not fed back:
        the decoder continues its own mean outputs, as it was trained to in the free-running
        phase.

        Args:
            n: Number of sequences B.
            length: Steps T per sequence; give this or ``lengths``.
            lengths: (n,) int steps of each sequence (e.g. drawn from the data's lengths);
                the result is padded to the longest, with zeros after each sequence's end.
            generator: Optional CPU generator for reproducible draws.
            noise: Add the learned noise, its mean and a draw (default: when the model has
                one); ``False`` gives the decoder's mean sequences.
            z: Optional (n, Z) codes to decode instead of draws from the prior.

        Returns:
            (B, T, F) generated sequences.
        """
        n = positive_int("n", n)
        if noise is None:
            noise = self.config.learned_noise
        elif not isinstance(noise, bool):
            raise TypeError(f"noise must be True, False or None, got {noise!r}")
        if (length is None) == (lengths is None):
            raise ValueError("give exactly one of length (int) or lengths ((n,) ints)")
        if lengths is not None:
            lengths = lengths_tensor("lengths", lengths, n, self.config.max_len)
            length = int(lengths.max())
        length = checks.sequence_length(length, self.config.max_len)
        if z is None:
            z = torch.randn(n, self.config.latent_dim, generator=generator)
        else:
            self._check_z(z)
            if len(z) != n:
                raise ValueError(f"z must hold n={n} codes, got {len(z)}")
        z = z.to(self.device, self.dtype)
        was_training = self.training
        self.eval()
        try:
            out = self.free_run(z, length)  # (B, T, F)
        finally:
            self.train(was_training)
        if noise:
            draws = torch.randn(out.shape, generator=generator).to(out)  # (B, T, F)
            sd = self.noise_variance(length).sqrt()  # (T, F); raises unless fitted
            out = out + self.noise_mean[:length] + draws * sd
        if lengths is None:
            return out
        mask = padding_mask(lengths.to(out.device), length)  # (B, T)
        return out.masked_fill(~mask[..., None], 0.0)

    def _require_noise(self) -> None:
        if not self.config.learned_noise:
            raise ValueError(
                "this model has no learned noise: build it with TVAEConfig(learned_noise=True)"
            )

    def noise_variance(self, length: int | None = None) -> torch.Tensor:
        """The fitted noise variance (T, F) of the first ``length`` steps (all by default).

        Raises:
            ValueError: the model has no learned noise, or it is not fitted yet.
        """
        self._require_noise()
        length = self.config.max_len if length is None else checks.sequence_length(
            length, self.config.max_len
        )  # fmt: skip
        if torch.isnan(self.noise_var).any() or torch.isnan(self.noise_mean).any():
            raise ValueError("the noise is not fitted yet: call fit_noise on the training data "
                             "(tvae_lib.recipes.train does it)")  # fmt: skip
        return self.noise_var[:length]

    @torch.no_grad()
    def noise_residuals(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One batch's part of :meth:`fit_noise`: what the free-running decoder misses.

        Args:
            x: (B, T, F) sequences on the model's device.
            mask: Optional (B, T) bool, ``True`` at real steps.

        Returns:
            The residuals (B, max_len, F), float64 on the CPU, of x minus its free-running
            reconstruction from ``mu``; NaN where a step is padding or beyond T.
        """
        self._require_noise()
        target = self._check(x, mask)  # padding zeroed, as in the reconstruction
        residual = (target - self.reconstruct(x, mask)).double().cpu()  # (B, T, F)
        if mask is not None:
            residual = residual.masked_fill(~mask.cpu()[..., None], float("nan"))
        out = torch.full((len(x), self.config.max_len, self.config.n_features), float("nan"),
                         dtype=torch.float64)  # fmt: skip
        out[:, : residual.shape[1]] = residual
        return out

    @torch.no_grad()
    def set_noise(self, residuals: torch.Tensor, min_count: int = 20) -> torch.Tensor:
        """Set the noise from :meth:`noise_residuals` of the training sequences.

        The variance at step t and channel f is the sensors' noise there, not the decoder's
        error: that error is smooth along a sequence and mostly cancels in the difference of
        two consecutive residuals, while independent noise does not (its difference has twice
        its variance). The median of the squared differences, divided by 2 and by the median
        of a chi-square with one degree of freedom, estimates it (a difference-based variance
        estimate made robust): the rare jumps of a faulty reading do not inflate it, as they
        would a mean.

        The mean at step t and channel f is the median residual there: the offset by which
        the decoder's mean misses the data at that step, whatever the code (a constant bias
        of the trained decoder; on the door cycles, about 0.01 in the speed channel wherever
        the door is at rest). Added to a generated sequence, it removes that bias.

        Steps fewer than ``min_count`` sequences reach (the long tail of variable lengths)
        get the channel's estimate over all steps; step 0's variance is step 1's.

        Args:
            residuals: (N, max_len, F), NaN where a step is not real.
            min_count: Sequences (pairs of steps, for the variance) a step needs for an
                estimate of its own.

        Returns:
            The variance (max_len, F); the mean is in ``noise_mean``.
        """
        self._require_noise()
        min_count = checks.positive_int("min_count", min_count)
        shape = (self.config.max_len, self.config.n_features)
        got = tuple(residuals.shape) if isinstance(residuals, torch.Tensor) else (
            type(residuals).__name__
        )  # fmt: skip
        if not isinstance(got, tuple) or len(got) != 3 or got[1:] != shape:
            raise ValueError(f"residuals must have shape (N, {shape[0]}, {shape[1]}), got {got}")
        residuals = residuals.double()
        squares = (residuals[:, 1:] - residuals[:, :-1]).pow(2)  # NaN unless both are real
        counts = (~torch.isnan(squares[..., 0])).sum(dim=0)  # (max_len - 1,)
        if counts.sum() == 0:
            raise ValueError("fitting the noise needs sequences with at least two real steps")
        half_chi2_median = 2 * _CHI2_1_MEDIAN
        per_step = _median_per_step(squares, counts, min_count)  # (max_len - 1, F)
        variance = torch.cat([per_step[:1], per_step]) / half_chi2_median  # (max_len, F)
        real_counts = (~torch.isnan(residuals[..., 0])).sum(dim=0)  # (max_len,)
        self.noise_mean.copy_(_median_per_step(residuals, real_counts, min_count))
        self.noise_var.copy_(variance.clamp_min(1e-12).to(self.noise_var))
        return self.noise_var.clone()

    def fit_noise(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, *, batch_size: int = 256,
        min_count: int = 20,
    ) -> torch.Tensor:
        """Fit the decoder's noise to sequences x (B, T, F), e.g. the training set.

        The MSE decoder is a Gaussian whose variance is fixed; its mean, decoded free-running,
        is smooth, while the data carry noise. This estimates that noise's mean and variance
        per step and channel from the free-running reconstructions from ``mu`` (see
        :meth:`set_noise`);
        :meth:`generate` then samples it. The weights do not change.

        Args:
            x: (B, T, F) sequences on the model's device.
            mask: Optional (B, T) bool, ``True`` at real steps.
            batch_size: Sequences reconstructed at once.
            min_count: Sequences a step needs for an estimate of its own.

        Returns:
            The fitted variance, (max_len, F); the fitted mean is in ``noise_mean``.
        """
        self._require_noise()
        step = checks.positive_int("batch_size", batch_size)
        parts = [
            self.noise_residuals(x[i : i + step], None if mask is None else mask[i : i + step])
            for i in range(0, len(x), step)
        ]
        return self.set_noise(torch.cat(parts), min_count)


_CHI2_1_MEDIAN = 0.454936423119572  # median of a chi-square with one degree of freedom


def _median_per_step(values: torch.Tensor, counts: torch.Tensor, min_count: int) -> torch.Tensor:
    """Median over sequences (dim 0, NaN skipped) of values (N, L, F) -> (L, F); steps with
    fewer than ``min_count`` values get the channel's median over all steps."""
    pooled = values.transpose(0, 2).reshape(values.shape[2], -1).nanmedian(dim=1).values  # (F,)
    per_step = values.nanmedian(dim=0).values  # (L, F)
    return torch.where((counts >= min_count)[:, None], per_step, pooled)
