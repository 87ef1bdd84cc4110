"""The Transformer's encoder and decoder blocks, batch-first, written to be read.

An **encoder layer** is self-attention followed by a position-wise feed-forward network, each
wrapped in a residual connection and a LayerNorm. A **decoder layer** adds cross-attention
over the encoder's output (the *memory*) between its (usually causal) self-attention and its
feed-forward network. Two placements of the LayerNorm are supported:

- post-LN (``norm_first=False``, the original paper): ``x = norm(x + sublayer(x))``;
- pre-LN (``norm_first=True``, Xiong et al. 2020): ``x = x + sublayer(norm(x))``, which trains
  more stably in deep stacks; pair it with ``final_norm=True`` on the stack.

The parameter names and the dropout placement follow ``torch.nn.TransformerEncoderLayer`` and
``torch.nn.TransformerDecoderLayer``, and :func:`tvae_lib.torch_reference.to_torch_layer`
builds PyTorch's layer with the same weights, so the two can be compared number for number.

Each sublayer is wrapped by :func:`residual`, the one place that says how a residual connection,
dropout and LayerNorm combine (the Annotated Transformer's "sublayer connection"), so each
layer's forward reads like the figure. A decoder fed one new position at a time keeps the keys
and values of the past positions in a :class:`~tvae_lib.decoding.DecoderCache` (one
:class:`~tvae_lib.kv_cache.KVCache` per attention layer): the same forward runs with and
without it.

Masks follow :mod:`tvae_lib.masks`: bool, ``True`` = allowed (a visible key, a real step).

Shapes: B batch, T target length, S source length, D d_model, H heads.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from tvae_lib.attention import MultiHeadAttention
from tvae_lib.checks import positive_int

if TYPE_CHECKING:  # the cache lives with the decoding loop that builds it
    from tvae_lib.decoding import DecoderCache, LayerCache

__all__ = [
    "FeedForward",
    "EncoderLayer",
    "DecoderLayer",
    "Encoder",
    "Decoder",
    "residual",
]


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        positive_int(name, value)


def residual(
    x: torch.Tensor,
    sublayer: Callable[[torch.Tensor], torch.Tensor],
    norm: nn.LayerNorm,
    dropout: nn.Dropout,
    norm_first: bool,
) -> torch.Tensor:
    """A sublayer with its residual connection: ``x + sublayer`` normalised after or before.

    - post-LN (the paper): ``norm(x + dropout(sublayer(x)))``
    - pre-LN: ``x + dropout(sublayer(norm(x)))``
    """
    if norm_first:
        return x + dropout(sublayer(norm(x)))
    return norm(x + dropout(sublayer(x)))


def _check_sequence(name: str, x: torch.Tensor, d_model: int, letter: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a tensor of shape (B, {letter}, D), got {type(x).__name__}")
    if x.dim() != 3 or x.shape[-1] != d_model:
        raise ValueError(
            f"{name} must have shape (B, {letter}, D={d_model}) (batch first), got {tuple(x.shape)}"
        )


class FeedForward(nn.Module):
    """The position-wise feed-forward network: ``Linear -> ReLU -> dropout -> Linear``.

    The same two-layer MLP is applied to every step independently.

    Args:
        d_model: Input and output width D.
        d_ff: Hidden width (4 D in the original paper).
        dropout: Dropout on the hidden activations during training.

    Shape:
        - x: (B, L, D) (any leading dimensions)
        - output: same shape as ``x``
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        _check_positive(d_model=d_model, d_ff=d_ff)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the MLP to each step of ``x`` (..., D); returns (..., D)."""
        return self.linear2(self.dropout(self.activation(self.linear1(x))))  # (..., D)


class EncoderLayer(nn.Module):
    """Self-attention and a feed-forward network, each with a residual and a LayerNorm.

    Args:
        d_model: Model width D; divisible by ``n_heads``.
        n_heads: Number of attention heads H.
        d_ff: Hidden width of the feed-forward network.
        dropout: Dropout on attention weights, hidden activations and both sublayer outputs.
        norm_first: ``False`` for post-LN (the paper), ``True`` for pre-LN.

    Shape:
        - x: (B, S, D)
        - attn_mask: (S, S) or (B, S, S) bool, ``True`` = may attend
        - key_padding_mask: (B, S) bool, ``True`` at real steps
        - output: (B, S, D)
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        norm_first: bool = False,
    ):
        super().__init__()
        _check_positive(d_model=d_model, n_heads=n_heads, d_ff=d_ff)
        self.d_model = d_model
        self.n_heads = n_heads
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout=dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Encode ``x`` (B, S, D); see the class docstring for the masks. Returns (B, S, D)."""
        _check_sequence("x", x, self.d_model, "S")

        def attend(h: torch.Tensor) -> torch.Tensor:
            return self.self_attn(h, h, h, attn_mask=attn_mask, key_padding_mask=key_padding_mask)[0]

        x = residual(x, attend, self.norm1, self.dropout1, self.norm_first)
        return residual(x, self.feed_forward, self.norm2, self.dropout2, self.norm_first)


class DecoderLayer(nn.Module):
    """Masked self-attention, cross-attention over the memory, and a feed-forward network.

    Each of the three sublayers has its own residual connection and LayerNorm.

    Args:
        d_model: Model width D; divisible by ``n_heads``.
        n_heads: Number of attention heads H (in both attentions).
        d_ff: Hidden width of the feed-forward network.
        dropout: Dropout on attention weights, hidden activations and the sublayer outputs.
        norm_first: ``False`` for post-LN (the paper), ``True`` for pre-LN.

    Shape:
        - x: (B, T, D), the target sequence; memory: (B, S, D), the encoder's output
        - self_attn_mask: (T, T) or (B, T, T) bool, e.g. ``masks.causal_mask(T)``
        - key_padding_mask: (B, T) bool, ``True`` at real target steps
        - memory_key_padding_mask: (B, S) bool, ``True`` at real source steps
        - memory_mask: (T, S) or (B, T, S) bool, rarely needed
        - output: (B, T, D)
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        norm_first: bool = False,
    ):
        super().__init__()
        _check_positive(d_model=d_model, n_heads=n_heads, d_ff=d_ff)
        self.d_model = d_model
        self.n_heads = n_heads
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout=dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        self_attn_mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        memory_key_padding_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        """Decode ``x`` (B, T, D) attending to ``memory`` (B, S, D). Returns (B, T, D).

        With a ``cache``, ``x`` holds only the new positions, the self-attention also sees the
        cached past ones (so ``self_attn_mask`` covers ``(T, past + T)``; none is needed for
        one new position, which may see every earlier one), and the memory's keys and values
        are computed on the first call only.
        """
        _check_sequence("x", x, self.d_model, "T")
        _check_sequence("memory", memory, self.d_model, "S")
        if memory.shape[0] != x.shape[0]:
            raise ValueError(
                f"memory must have the batch size of x (B={x.shape[0]}), got {tuple(memory.shape)}"
            )
        own, cross = (None, None) if cache is None else (cache.self_attn, cache.cross_attn)

        def attend_self(h: torch.Tensor) -> torch.Tensor:
            return self.self_attn(h, h, h, attn_mask=self_attn_mask,
                                  key_padding_mask=key_padding_mask, cache=own)[0]  # fmt: skip

        def attend_memory(h: torch.Tensor) -> torch.Tensor:
            return self.cross_attn(h, memory, memory, attn_mask=memory_mask,
                                   key_padding_mask=memory_key_padding_mask, cache=cross)[0]  # fmt: skip

        x = residual(x, attend_self, self.norm1, self.dropout1, self.norm_first)
        x = residual(x, attend_memory, self.norm2, self.dropout2, self.norm_first)
        return residual(x, self.feed_forward, self.norm3, self.dropout3, self.norm_first)


def _fresh_copies(layer: nn.Module, n_layers: int, kind: type) -> nn.ModuleList:
    """``n_layers`` deep copies of ``layer``, each re-initialised with its own random draws."""
    if not isinstance(layer, kind):
        raise TypeError(f"layer must be a {kind.__name__}, got {type(layer).__name__}")
    _check_positive(n_layers=n_layers)
    copies = nn.ModuleList(copy.deepcopy(layer) for _ in range(n_layers))
    for module in copies.modules():
        if hasattr(module, "reset_parameters"):  # nn.Linear, nn.LayerNorm, ...
            module.reset_parameters()
    return copies


class Encoder(nn.Module):
    """A stack of ``n_layers`` encoder layers, optionally followed by a LayerNorm.

    The layers are deep copies of ``layer``, each re-initialised, so they start from
    independent weights (``torch.nn.TransformerEncoder`` clones without re-initialising, so
    its layers start identical).

    Args:
        layer: The layer to copy; it is not itself part of the stack.
        n_layers: Number of layers.
        final_norm: Add a LayerNorm after the last layer (use it with pre-LN layers).

    Shape:
        - x: (B, S, D); masks as in :class:`EncoderLayer`
        - output: (B, S, D)
    """

    def __init__(self, layer: EncoderLayer, n_layers: int, final_norm: bool = False):
        super().__init__()
        self.layers = _fresh_copies(layer, n_layers, EncoderLayer)
        self.norm = nn.LayerNorm(layer.d_model) if final_norm else None

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run ``x`` (B, S, D) through every layer. Returns (B, S, D)."""
        for layer in self.layers:
            x = layer(x, attn_mask=attn_mask, key_padding_mask=key_padding_mask)  # (B, S, D)
        return x if self.norm is None else self.norm(x)


class Decoder(nn.Module):
    """A stack of ``n_layers`` decoder layers, optionally followed by a LayerNorm.

    Every layer attends to the same ``memory``. The layers are re-initialised deep copies of
    ``layer``, as in :class:`Encoder`.

    Args:
        layer: The layer to copy; it is not itself part of the stack.
        n_layers: Number of layers.
        final_norm: Add a LayerNorm after the last layer (use it with pre-LN layers).

    Shape:
        - x: (B, T, D); memory: (B, S, D); masks as in :class:`DecoderLayer`
        - output: (B, T, D)
    """

    def __init__(self, layer: DecoderLayer, n_layers: int, final_norm: bool = False):
        super().__init__()
        self.layers = _fresh_copies(layer, n_layers, DecoderLayer)
        self.norm = nn.LayerNorm(layer.d_model) if final_norm else None

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        self_attn_mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        memory_key_padding_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        cache: DecoderCache | None = None,
    ) -> torch.Tensor:
        """Run ``x`` (B, T, D) through every layer, each attending to ``memory`` (B, S, D).

        With a :class:`~tvae_lib.decoding.DecoderCache` built for this decoder, ``x`` holds only the new
        positions (see :meth:`DecoderLayer.forward`) and the cache is extended in place.
        """
        if cache is not None:
            cache.check(self)
        for i, layer in enumerate(self.layers):
            x = layer(
                x,
                memory,
                self_attn_mask=self_attn_mask,
                key_padding_mask=key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
                memory_mask=memory_mask,
                cache=None if cache is None else cache.layers[i],
            )  # (B, T, D)
        if cache is not None:
            cache.length += x.shape[1]
        return x if self.norm is None else self.norm(x)
