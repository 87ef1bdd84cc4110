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
   forcing) or its own outputs one step at a time (:meth:`TransformerVAE.decode_autoregressive`);
7. ``output_proj``: (B, T, D) -> x_hat (B, T, F).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tvae_lib.masks import causal_mask
from tvae_lib.positional import SinusoidalPositionalEncoding
from tvae_lib.transformer import Decoder, DecoderLayer, Encoder, EncoderLayer
from tvae_lib.vae import reparameterize

__all__ = ["TVAEConfig", "TransformerVAE", "save_checkpoint", "load_checkpoint"]


@dataclass
class TVAEConfig:
    """Sizes of a :class:`TransformerVAE`."""

    n_features: int = 3  # F, channels per time step
    d_model: int = 64  # D, width of every Transformer layer
    n_heads: int = 4  # H, attention heads (d_model must be a multiple)
    d_ff: int = 128  # hidden width of each position-wise feed-forward block
    n_encoder_layers: int = 2  # encoder depth
    n_decoder_layers: int = 2  # decoder depth
    latent_dim: int = 2  # Z, size of the latent code
    max_len: int = 128  # longest sequence the positional table covers
    dropout: float = 0.0  # dropout inside the Transformer layers
    decoder_input_dropout: float = 0.0  # training only: share of decoder input steps zeroed
    embedding: str = "linear"  # encoder input: "linear" per step or "conv" over 3 steps
    pooling: str = "mean"  # over time: "mean" or "mean_max" (mean and maximum concatenated)
    n_classes: int = 0  # > 0 adds a classifier head on mu (for a label-guided latent)

    def __post_init__(self) -> None:
        for name in ("n_features", "d_model", "n_heads", "d_ff", "n_encoder_layers",
                     "n_decoder_layers", "latent_dim", "max_len"):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads != 0:
            raise ValueError(
                f"d_model must be a multiple of n_heads, got {self.d_model} and {self.n_heads}"
            )
        for name in ("dropout", "decoder_input_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)!r}")
        if self.embedding not in ("linear", "conv"):
            raise ValueError(f"embedding must be 'linear' or 'conv', got {self.embedding!r}")
        if self.pooling not in ("mean", "mean_max"):
            raise ValueError(f"pooling must be 'mean' or 'mean_max', got {self.pooling!r}")
        if not isinstance(self.n_classes, int) or isinstance(self.n_classes, bool) or (
            self.n_classes < 0 or self.n_classes == 1
        ):
            raise ValueError(
                f"n_classes must be 0 (no classifier) or an int >= 2, got {self.n_classes!r}"
            )


class TransformerVAE(nn.Module):
    """A VAE whose encoder and decoder are Transformers; see the module docstring.

    Args:
        config: The sizes.

    Shape:
        - x: (B, T, F) with T <= ``config.max_len``
        - mask: optional (B, T) bool, ``True`` at real steps (padding at the end)
        - output of ``forward``: ``(x_hat (B, T, F), mu (B, Z), logvar (B, Z))``
    """

    def __init__(self, config: TVAEConfig | None = None):
        super().__init__()
        config = config or TVAEConfig()
        if not isinstance(config, TVAEConfig):
            raise TypeError(f"config must be a TVAEConfig, got {type(config).__name__}")
        self.config = config
        d_model, n_heads, d_ff, dropout = (
            config.d_model,
            config.n_heads,
            config.d_ff,
            config.dropout,
        )
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

    def _check(self, x: torch.Tensor, mask: torch.Tensor | None) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have shape (B, T, F={self.config.n_features}), got {got}")
        if x.shape[2] != self.config.n_features:
            raise ValueError(
                f"x must have F={self.config.n_features} channels, got shape {tuple(x.shape)}"
            )
        self._check_length(x.shape[1])
        if mask is not None:
            if mask.dtype != torch.bool or mask.shape != x.shape[:2]:
                raise ValueError(
                    f"mask must be a bool tensor of shape (B, T)={tuple(x.shape[:2])}, got "
                    f"{mask.dtype} {tuple(mask.shape)}"
                )
            if not mask[:, 0].all():
                raise ValueError("mask must mark at least the first step of every sequence")

    def _check_length(self, length: int) -> None:
        if not 1 <= length <= self.config.max_len:
            raise ValueError(
                f"sequence length T={length} is outside [1, max_len={self.config.max_len}]; "
                "build the model with a larger TVAEConfig.max_len"
            )

    def encode(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z|x)``: x (B, T, F) and mask (B, T) -> ``(mu (B, Z), logvar (B, Z))``."""
        self._check(x, mask)
        if self.config.embedding == "conv":
            if mask is not None:  # zeros past the end, as before the start: padding never leaks
                x = x.masked_fill(~mask[..., None], 0.0)
            h = self.input_proj(x.transpose(1, 2)).transpose(1, 2)  # (B, F, T) -> (B, T, D)
        else:
            h = self.input_proj(x)  # (B, T, D)
        h = self.encoder(self.positional(h), key_padding_mask=mask)  # (B, T, D)
        if mask is None:
            pooled = h.mean(dim=1)  # (B, D)
        else:
            weights = mask.to(h.dtype)[..., None]  # (B, T, 1)
            pooled = (h * weights).sum(dim=1) / weights.sum(dim=1)  # (B, D), padding ignored
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
        if mu.dim() != 2 or mu.shape[1] != self.config.latent_dim:
            raise ValueError(
                f"mu must have shape (B, Z={self.config.latent_dim}), got {tuple(mu.shape)}"
            )
        return self.classifier(mu)

    def memory(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's memory: z (B, Z) -> one position (B, 1, D).

        Repeating it over T positions (as the seed post does) gives the same cross-attention
        output when no positional code is added to the memory, at T times the cost.
        """
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(
                f"z must have shape (B, Z={self.config.latent_dim}), got {tuple(z.shape)}"
            )
        return self.latent_proj(z)[:, None, :]  # (B, 1, D)

    def _decode_steps(
        self, inputs: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Decoder inputs (B, T, F) -> predictions (B, T, F); step t sees inputs 0..t."""
        length = inputs.shape[1]
        h = self.positional(self.target_proj(inputs))  # (B, T, D)
        h = self.decoder(
            h, memory, self_attn_mask=self.causal[:length, :length], key_padding_mask=mask
        )  # (B, T, D)
        return self.output_proj(h)  # (B, T, F)

    def decode(
        self, z: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Teacher-forced decoding: predict x_t from z and the true x_0 .. x_{t-1}.

        The decoder's input is x shifted right by one step behind a zero start vector. In
        training, ``config.decoder_input_dropout`` of the input steps are zeroed, so the
        decoder cannot rely on the past alone and must use ``z``.

        Args:
            z: (B, Z) latent codes.
            x: (B, T, F) target sequences.
            mask: Optional (B, T) bool, ``True`` at real steps.

        Returns:
            (B, T, F) predictions.
        """
        self._check(x, mask)
        inputs = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)  # (B, T, F)
        p = self.config.decoder_input_dropout
        if self.training and p > 0:
            keep = torch.rand(x.shape[:2], device=x.device) >= p  # (B, T)
            keep[:, 0] = True  # the start vector is zero anyway
            inputs = inputs * keep[..., None].to(x.dtype)  # (B, T, F)
        return self._decode_steps(inputs, self.memory(z), mask)

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

    @torch.no_grad()
    def decode_autoregressive(self, z: torch.Tensor, length: int) -> torch.Tensor:
        """Free-running decoding: feed each prediction back in as the next input.

        The naive loop: step t re-runs the decoder over all t + 1 inputs so far and keeps
        the last output, O(T^2) positions in all (a key/value cache would make it O(T)).

        Args:
            z: (B, Z) latent codes.
            length: Number of steps T to generate.

        Returns:
            (B, T, F) generated sequences.
        """
        self._check_length(length)
        memory = self.memory(z)  # (B, 1, D)
        inputs = torch.zeros(z.shape[0], 1, self.config.n_features, device=z.device)  # (B, 1, F)
        for _ in range(length):
            prediction = self._decode_steps(inputs, memory)[:, -1:]  # (B, 1, F)
            inputs = torch.cat([inputs, prediction], dim=1)  # (B, t + 2, F)
        return inputs[:, 1:]  # (B, T, F), the start vector dropped

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
            (B, T, F) reconstructions (values at padded steps are meaningless).
        """
        was_training = self.training
        self.eval()
        mu, _ = self.encode(x, mask)
        if free_running:
            out = self.decode_autoregressive(mu, x.shape[1])
        else:
            out = self.decode(mu, x, mask)
        self.train(was_training)
        return out

    @torch.no_grad()
    def generate(
        self, n: int, length: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Decode ``n`` codes drawn from the prior ``N(0, I)`` into new sequences.

        Args:
            n: Number of sequences B.
            length: Steps T per sequence (default ``config.max_len``).
            generator: Optional CPU generator for reproducible draws.

        Returns:
            (B, T, F) generated sequences.
        """
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        length = self.config.max_len if length is None else length
        device = self.output_proj.weight.device
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(device)  # (B, Z)
        was_training = self.training
        self.eval()
        out = self.decode_autoregressive(z, length)
        self.train(was_training)
        return out


def save_checkpoint(
    model: TransformerVAE, path: str | os.PathLike, metadata: dict[str, Any] | None = None
) -> Path:
    """Save the config, the weights and plain metadata, atomically.

    The file is written next to its destination and renamed into place, so an interrupted
    save never leaves a half-written file where a good one was.

    Args:
        model: The model.
        path: Destination (``.pt``).
        metadata: Plain Python values only (numbers, strings, lists, dicts), e.g. a history.

    Returns:
        The path written.
    """
    if not isinstance(model, TransformerVAE):
        raise TypeError(f"model must be a TransformerVAE, got {type(model).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"config": asdict(model.config), "state_dict": state, "metadata": metadata or {}}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_checkpoint(
    path: str | os.PathLike, device: torch.device | str = "cpu"
) -> tuple[TransformerVAE, dict[str, Any]]:
    """Load a file written by :func:`save_checkpoint` (``weights_only=True``: no pickle).

    Returns:
        ``(model, metadata)``, the model in evaluation mode on ``device``.
    """
    payload = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(payload, dict) or {"config", "state_dict"} - payload.keys():
        raise ValueError(f"{path} is not a TransformerVAE checkpoint (needs config, state_dict)")
    model = TransformerVAE(TVAEConfig(**payload["config"])).to(device)
    model.load_state_dict(payload["state_dict"])
    return model.eval(), payload.get("metadata", {})
