"""Scaled dot-product attention and multi-head attention, batch-first.

Masks follow :mod:`tvae_lib.masks`: a boolean mask is ``True`` where attention is allowed.
A query whose every key is masked gets all-zero weights and a zero output, never NaN.

Shapes: B batch, T query length, S key length, D d_model, H heads, Dh = D / H head size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tvae_lib.masks import merge_masks

__all__ = ["scaled_dot_product_attention", "MultiHeadAttention"]


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(Q K^T / sqrt(Dh)) V``, written out so every step can be read.

    Args:
        query: (..., T, Dh).
        key: (..., S, Dh).
        value: (..., S, Dv).
        mask: Bool, broadcastable to (..., T, S); ``True`` = the query may attend to the key.
        dropout_p: Dropout on the attention weights (pass 0.0 in evaluation).

    Returns:
        ``(output, weights)``: output (..., T, Dv) and weights (..., T, S). Rows of the weights
        sum to 1, except for fully masked queries, whose weights and output are all zero.
    """
    if query.dim() < 2 or key.dim() != query.dim() or value.dim() != query.dim():
        raise ValueError(
            "query, key and value must have the same rank >= 2, got shapes "
            f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
        )
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"query and key must share their last dimension Dh, got {query.shape[-1]} "
            f"and {key.shape[-1]}"
        )
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"key and value must have the same length S, got {key.shape[-2]} and {value.shape[-2]}"
        )
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])  # (..., T, S)
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor (True = allowed), got {mask.dtype}")
        try:
            torch.broadcast_shapes(mask.shape, scores.shape)
        except RuntimeError as err:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
                f"{tuple(scores.shape)} (..., T, S)"
            ) from err
        # The most negative finite number rather than -inf: a fully masked row then gives a
        # finite (uniform) softmax instead of NaN, and is zeroed just below.
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1)  # (..., T, S)
    if mask is not None:
        weights = weights * mask.any(dim=-1, keepdim=True)  # zero rows with no allowed key
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ value, weights  # (..., T, Dv), (..., T, S)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate query, key and value projections.

    Args:
        d_model: Model width D; must be divisible by ``n_heads``.
        n_heads: Number of heads H.
        dropout: Dropout on the attention weights during training.
        bias: Whether the projections have biases.

    Shape:
        - query: (B, T, D); key and value: (B, S, D)
        - attn_mask: (T, S) or (B, T, S) bool, ``True`` = allowed
        - key_padding_mask: (B, S) bool, ``True`` at real keys
        - output: (B, T, D); weights (when asked for): (B, H, T, S)
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d_model <= 0 or n_heads <= 0 or d_model % n_heads != 0:
            raise ValueError(
                f"d_model must be a positive multiple of n_heads, got d_model={d_model}, "
                f"n_heads={n_heads}"
            )
        self.d_model = d_model
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> (B, H, L, Dh)."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.n_heads, self.head_dim).transpose(1, 2)

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, L, Dh) -> (B, L, D)."""
        batch, _, length, _ = x.shape
        return x.transpose(1, 2).reshape(batch, length, self.d_model)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``query`` to ``key``/``value``; see the class docstring for shapes.

        Returns:
            ``(output, weights)``; ``weights`` is ``None`` unless ``need_weights``.
        """
        self._check_inputs(query, key, value, attn_mask, key_padding_mask)
        q = self.split_heads(self.q_proj(query))  # (B, H, T, Dh)
        k = self.split_heads(self.k_proj(key))  # (B, H, S, Dh)
        v = self.split_heads(self.v_proj(value))  # (B, H, S, Dh)
        mask = merge_masks(attn_mask, key_padding_mask)  # broadcastable to (B, H, T, S)
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p)
        else:
            # PyTorch's fused kernel: same convention (True = allowed), zero for empty rows.
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
            weights = None
        return self.out_proj(self.merge_heads(out)), weights  # (B, T, D)

    def _check_inputs(self, query, key, value, attn_mask, key_padding_mask) -> None:
        for name, x in (("query", query), ("key", key), ("value", value)):
            if x.dim() != 3 or x.shape[-1] != self.d_model:
                raise ValueError(
                    f"{name} must have shape (B, L, D={self.d_model}), got {tuple(x.shape)}"
                )
        if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ValueError(
                f"query (B, T, D), key and value (B, S, D) disagree: {tuple(query.shape)}, "
                f"{tuple(key.shape)}, {tuple(value.shape)}"
            )
        batch, target_len, source_len = query.shape[0], query.shape[1], key.shape[1]
        if attn_mask is not None and tuple(attn_mask.shape[-2:]) != (target_len, source_len):
            raise ValueError(
                f"attn_mask must have shape (T={target_len}, S={source_len}) or (B, T, S), "
                f"got {tuple(attn_mask.shape)}"
            )
        if key_padding_mask is not None and tuple(key_padding_mask.shape) != (batch, source_len):
            raise ValueError(
                f"key_padding_mask must have shape (B={batch}, S={source_len}), "
                f"got {tuple(key_padding_mask.shape)}"
            )
