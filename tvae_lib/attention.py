"""Attention, batch-first: scaled dot-product, additive (Bahdanau) and multi-head.

Masks follow :mod:`tvae_lib.masks`: a boolean mask is ``True`` where attention is allowed.
A query whose every key is masked gets all-zero weights and a zero output, never NaN, and
whatever a masked key or value holds (even NaN or inf) never reaches an allowed position.

For fast autoregressive decoding, :class:`MultiHeadAttention` can keep the keys and values of
past positions in a :class:`~tvae_lib.kv_cache.KVCache` (as torchtune's attention layers do):
the cache belongs to the attention layer, so a decoder layer's forward is the same code with
and without it.

Shapes: B batch, T query length, S key length, D d_model, H heads, Dh = D / H head size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tvae_lib.checks import positive_int
from tvae_lib.kv_cache import KVCache
from tvae_lib.masks import merge_masks

__all__ = [
    "scaled_dot_product_attention",
    "attend",
    "one_query_decoding",
    "attend_one_query",
    "AdditiveAttention",
    "MultiHeadAttention",
]


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
    return attend(scores, value, mask, dropout_p)


def attend(
    scores: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The half every attention shares: mask the scores, softmax each row, weight the values.

    Args:
        scores: (..., T, S), one score per query and key, however computed.
        value: (..., S, Dv).
        mask: Bool, broadcastable to (..., T, S); ``True`` = the query may attend to the key.
        dropout_p: Dropout on the attention weights (pass 0.0 in evaluation).

    Returns:
        ``(output, weights)`` as in :func:`scaled_dot_product_attention`.
    """
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
        visible = mask.any(dim=-2)[..., None]  # (..., S, 1): keys some query may see
        value = torch.where(visible, value, 0.0)  # a hidden value cannot leak, even NaN
    weights = scores.softmax(dim=-1)  # (..., T, S)
    if mask is not None:
        weights = weights * mask.any(dim=-1, keepdim=True)  # zero rows with no allowed key
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ value, weights  # (..., T, Dv), (..., T, S)


def one_query_decoding(cache: KVCache | None, query: torch.Tensor, dropout_p: float) -> bool:
    """Whether an attention call is one decoding step without autograd: a cache, a single
    query position (query (B, H, 1, Dh)), no dropout, no gradient recorded.

    There, :class:`MultiHeadAttention` (and the cached decoder's lean steps) call
    :func:`attend_one_query` instead of PyTorch's fused kernel; with autograd on (training on
    the decoder's own outputs) the fused kernel stays, so training is unchanged.
    """
    return (
        cache is not None
        and query.shape[-2] == 1
        and dropout_p == 0.0
        and not torch.is_grad_enabled()
    )


def attend_one_query(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Unmasked attention of a single query position, ``softmax(q K^T / sqrt(Dh)) V``.

    A decoding step's attention: two small matrix products and a softmax per head. It costs
    about a third less than PyTorch's fused kernel, whose fixed cost per call (tens of
    microseconds on a CPU) is made for many queries at once, and it scales the query rather
    than the scores (Dh numbers per head instead of S). The result agrees with
    :func:`scaled_dot_product_attention` and the fused kernel to about 1e-7 in float32, not to
    the bit.

    Args:
        query: (..., 1, Dh).
        key: (..., S, Dh).
        value: (..., S, Dv).

    Returns:
        (..., 1, Dv).
    """
    scores = (query * query.shape[-1] ** -0.5) @ key.transpose(-2, -1)  # (..., 1, S)
    return scores.softmax(dim=-1) @ value  # (..., 1, Dv)


class AdditiveAttention(nn.Module):
    """Bahdanau et al.'s additive attention: a small MLP scores each query against each key.

    .. math::

        e_{ts} = w^\\top \\tanh(W_q q_t + W_k k_s), \\qquad
        \\alpha_{ts} = \\operatorname{softmax}_s(e_{ts}),

        \\text{output}_t = \\textstyle\\sum_s \\alpha_{ts} v_s .

    Queries and keys may have different widths, and the score is not bilinear: the ``tanh``
    lets it learn matches a dot product cannot express, at the price of a (..., T, S, A)
    intermediate instead of a (..., T, S) matrix product. Masks and fully masked rows work as
    in :func:`scaled_dot_product_attention` (through :func:`attend`).

    Args:
        query_dim: Width of the queries.
        key_dim: Width of the keys.
        hidden_dim: Width A of the scoring MLP.

    Shape:
        - query: (..., T, query_dim); key: (..., S, key_dim); value: (..., S, Dv)
        - mask: bool, broadcastable to (..., T, S), ``True`` = allowed
        - output: (..., T, Dv); weights: (..., T, S)
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int):
        super().__init__()
        for name, value in (("query_dim", query_dim), ("key_dim", key_dim),
                            ("hidden_dim", hidden_dim)):  # fmt: skip
            positive_int(name, value)
        self.query_proj = nn.Linear(query_dim, hidden_dim, bias=False)  # W_q
        self.key_proj = nn.Linear(key_dim, hidden_dim, bias=False)  # W_k
        self.score = nn.Linear(hidden_dim, 1, bias=False)  # w

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from ``query`` to ``key``/``value``; returns ``(output, weights)``."""
        if query.dim() < 2 or key.dim() != query.dim() or value.dim() != query.dim():
            raise ValueError(
                "query, key and value must have the same rank >= 2, got shapes "
                f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
            )
        if key.shape[-2] != value.shape[-2]:
            raise ValueError(f"key and value must have the same length S, got "
                             f"{key.shape[-2]} and {value.shape[-2]}")  # fmt: skip
        q = self.query_proj(query)[..., :, None, :]  # (..., T, 1, A)
        k = self.key_proj(key)[..., None, :, :]  # (..., 1, S, A)
        scores = self.score(torch.tanh(q + k)).squeeze(-1)  # (..., T, S)
        return attend(scores, value, mask)


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

    def fused_projection(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The query, key and value projections stacked: ``(weight (3 D, D), bias or None)``."""
        weight = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])
        bias = None if self.q_proj.bias is None else torch.cat(
            [self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]
        )
        return weight, bias

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
        cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``query`` to ``key``/``value``; see the class docstring for shapes.

        Args:
            query, key, value: (B, T, D), (B, S, D), (B, S, D).
            attn_mask: (T, S) or (B, T, S) bool, ``True`` = allowed.
            key_padding_mask: (B, S) bool, ``True`` at real keys.
            need_weights: Also return the attention weights (the written-out path).
            cache: Optional :class:`~tvae_lib.kv_cache.KVCache`. A growing cache prepends its
                past keys and values to this call's (``key``/``value`` are then the new
                positions only, and the masks cover ``S = past + new`` keys); a filled static
                cache replaces ``key`` and ``value`` altogether.

        Returns:
            ``(output, weights)``; ``weights`` is ``None`` unless ``need_weights``.
        """
        self._check_inputs(query, key, value, attn_mask, key_padding_mask, cache)
        dropout_p = self.dropout if self.training else 0.0
        # one memory position, unmasked: its weight is 1 whatever the query, so the output is
        # the same for every query (the TVAE's z), computed at the first step and reused
        constant = cache is not None and cache.static and not need_weights and (
            attn_mask is None and key_padding_mask is None and dropout_p == 0.0
        )
        if cache is not None and cache.made_with_grad != torch.is_grad_enabled():
            cache.refresh()  # made without autograd, they would carry no gradient (or v.v.)
        if constant and cache.output is not None:
            return cache.output.expand(query.shape[0], query.shape[1], -1), None  # (B, T, D)
        reuse = cache is not None and cache.static and cache.keys is not None
        if key_padding_mask is not None and not reuse:
            padded = ~key_padding_mask[..., -key.shape[1]:, None]  # (B, S_new, 1)
            key, value = key.masked_fill(padded, 0.0), value.masked_fill(padded, 0.0)
        if reuse:
            q = self.split_heads(self.q_proj(query))  # (B, H, T, Dh)
            k, v = cache.keys, cache.values  # (B, H, S, Dh) each
        elif cache is not None and not cache.static and query is key and key is value:
            # new positions of self-attention: one matrix product instead of three
            if cache.fused_projection is None:
                cache.fused_projection = self.fused_projection()
            qkv = F.linear(query, *cache.fused_projection)  # (B, T, 3 D)
            q, k, v = (self.split_heads(p) for p in qkv.chunk(3, -1))  # (B, H, T, Dh) each
        else:
            q = self.split_heads(self.q_proj(query))  # (B, H, T, Dh)
            k = self.split_heads(self.k_proj(key))  # (B, H, S, Dh)
            v = self.split_heads(self.v_proj(value))  # (B, H, S, Dh)
        if cache is not None and not reuse:
            if cache.static:
                cache.keys, cache.values = k, v
            else:
                cache.append(k, v)
                k, v = cache.keys, cache.values  # (B, H, past + new, Dh)
        mask = merge_masks(attn_mask, key_padding_mask)  # broadcastable to (B, H, T, S)
        if need_weights:
            out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p)
        elif mask is None and one_query_decoding(cache, q, dropout_p):
            out, weights = attend_one_query(q, k, v), None  # (B, H, 1, Dh)
        else:
            # PyTorch's fused kernel: same convention (True = allowed), zero for empty rows.
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
            weights = None
        out = self.out_proj(self.merge_heads(out))  # (B, T, D)
        if constant and k.shape[2] == 1:
            cache.output = out[:, :1]  # (B, 1, D)
        return out, weights

    def _check_inputs(self, query, key, value, attn_mask, key_padding_mask, cache) -> None:
        for name, x in (("query", query), ("key", key), ("value", value)):
            if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.d_model:
                got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                raise ValueError(f"{name} must have shape (B, L, D={self.d_model}), got {got}")
        if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ValueError(
                f"query (B, T, D), key and value (B, S, D) disagree: {tuple(query.shape)}, "
                f"{tuple(key.shape)}, {tuple(value.shape)}"
            )
        batch, target_len, source_len = query.shape[0], query.shape[1], key.shape[1]
        if cache is not None:
            if not isinstance(cache, KVCache):
                raise TypeError(f"cache must be a KVCache, got {type(cache).__name__}")
            if cache.keys is not None and cache.keys.shape[0] != batch:
                raise ValueError(
                    f"cache holds a batch of {cache.keys.shape[0]} sequences, but query has "
                    f"B={batch}: build a new cache for a new batch"
                )
            if cache.keys is not None:
                source_len = cache.length if cache.static else cache.length + source_len
        if attn_mask is not None:
            if attn_mask.dim() not in (2, 3) or tuple(attn_mask.shape[-2:]) != (
                target_len, source_len
            ) or (attn_mask.dim() == 3 and attn_mask.shape[0] != batch):
                raise ValueError(
                    f"attn_mask must have shape (T={target_len}, S={source_len}) or "
                    f"(B={batch}, T, S), got {tuple(attn_mask.shape)}"
                )
        if key_padding_mask is not None and tuple(key_padding_mask.shape) != (batch, source_len):
            raise ValueError(
                f"key_padding_mask must have shape (B={batch}, S={source_len}), "
                f"got {tuple(key_padding_mask.shape)}"
            )
