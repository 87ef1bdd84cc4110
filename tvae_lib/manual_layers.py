"""Backward passes by hand for the layers a Transformer is built of, from the pieces of
:mod:`tvae_lib.manual_backward` (chapter 5): linear, feed-forward and multi-head attention.

As there, each ``*_forward`` returns its output and a cache, and each ``*_backward``
maps the upstream gradient to the gradients of the inputs and parameters, without
autograd. Parameters go in as a mapping from the names of the matching module's
``named_parameters()`` (``"linear1.weight"``, ``"self_attn.q_proj.bias"``, ...) to
tensors, and their gradients come back under the same names, to compare with autograd's
name by name. Dropout is left out (the layers in evaluation mode).
:mod:`tvae_lib.manual_encoder` puts them together into a whole encoder layer.

Shapes: B batch, T query length, S key length, D d_model, H heads, Dh = D / H head size;
D_in and D_out a linear layer's widths, d_ff the feed-forward network's hidden width.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch

from tvae_lib.checks import bool_mask, positive_int, tensor_of_rank
from tvae_lib.manual_backward import (
    AttentionCache,
    attention_backward,
    attention_forward,
)
from tvae_lib.masks import merge_masks

__all__ = [
    "LinearCache", "linear_forward", "linear_backward",
    "FeedForwardCache", "feed_forward_forward", "feed_forward_backward",
    "AttentionBlockCache", "multi_head_attention_forward",
    "multi_head_attention_backward",
]  # fmt: skip

Params = Mapping[str, torch.Tensor]
Grads = dict[str, torch.Tensor]


def _check_tensor(name: str, x: object, shape: tuple, what: str, dtype) -> None:
    """``x`` must be a tensor of exactly ``shape`` (read as ``what``) and ``dtype``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a tensor {what}, got {type(x).__name__}")
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {what}={tuple(shape)}, got "
                         f"{tuple(x.shape)}")  # fmt: skip
    if x.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} like the rest, got {x.dtype}")


def _check_params(params: object) -> None:
    if not isinstance(params, Mapping):
        raise TypeError(f"params must map names to tensors, got {type(params)}")


def _param(params: Params, name: str, required: bool = True) -> torch.Tensor | None:
    _check_params(params)
    if required and name not in params:
        raise ValueError(f"params has no {name!r}: pass a module's named_parameters()")
    return params.get(name)


def _sub(params: Params, prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``params`` under ``prefix.``, with the prefix removed."""
    _check_params(params)
    start = len(prefix) + 1
    return {k[start:]: v for k, v in params.items() if k.startswith(prefix + ".")}


class LinearCache(NamedTuple):
    """What :func:`linear_backward` needs: input, weight, and if there is a bias."""

    x: torch.Tensor  # (..., D_in)
    weight: torch.Tensor  # (D_out, D_in)
    has_bias: bool


def linear_forward(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> tuple[torch.Tensor, LinearCache]:
    """``y = x W^T + b`` in ``nn.Linear``'s layout, over any leading dimensions.

    Args:
        x: (..., D_in).
        weight: (D_out, D_in).
        bias: (D_out,) or ``None``.

    Returns:
        ``(y, cache)`` with y (..., D_out).
    """
    weight = tensor_of_rank("weight", weight, 2, "(D_out, D_in)")
    d_out, d_in = weight.shape
    leading = x.shape[:-1] if isinstance(x, torch.Tensor) else ()
    _check_tensor("x", x, (*leading, d_in), "(..., D_in)", weight.dtype)
    y = x @ weight.T  # (..., D_out)
    if bias is not None:
        _check_tensor("bias", bias, (d_out,), "(D_out,)", weight.dtype)
        y = y + bias
    return y, LinearCache(x, weight, bias is not None)


def linear_backward(
    grad_y: torch.Tensor, cache: LinearCache
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Gradients of a linear layer: ``dx = dy W``, ``dW = dy^T x``, ``db = sum dy``.

    Every leading position uses the same ``W`` and ``b``, so their gradients sum over
    all N positions; flattening them into N rows makes ``dW`` one matrix product.

    Args:
        grad_y: (..., D_out) upstream gradient.
        cache: From :func:`linear_forward`.

    Returns:
        ``(grad_x, grad_weight, grad_bias)``: (..., D_in), (D_out, D_in), and (D_out,)
        or ``None`` without a bias.
    """
    x, weight, has_bias = cache
    d_out, d_in = weight.shape
    _check_tensor("grad_y", grad_y, (*x.shape[:-1], d_out), "(..., D_out)", x.dtype)
    grad_x = grad_y @ weight  # (..., D_in)
    flat_grad = grad_y.reshape(-1, d_out)  # (N, D_out)
    grad_weight = flat_grad.T @ x.reshape(-1, d_in)  # (D_out, N) @ (N, D_in)
    return grad_x, grad_weight, flat_grad.sum(dim=0) if has_bias else None


def _linear(x: torch.Tensor, params: Params, name: str):
    """The linear layer ``name`` of ``params``: ``name.weight``, maybe ``name.bias``."""
    weight = _param(params, f"{name}.weight")
    return linear_forward(x, weight, _param(params, f"{name}.bias", required=False))


def _linear_grads(grad_y: torch.Tensor, cache: LinearCache, name: str):
    """:func:`linear_backward`, the gradients named as :func:`_linear` reads them."""
    grad_x, grad_weight, grad_bias = linear_backward(grad_y, cache)
    grads = {f"{name}.weight": grad_weight}
    if grad_bias is not None:
        grads[f"{name}.bias"] = grad_bias
    return grad_x, grads


class FeedForwardCache(NamedTuple):
    """The two linear layers' caches and where the ReLU let its input through."""

    linear1: LinearCache
    active: torch.Tensor  # (..., d_ff) bool: the hidden pre-activation is > 0
    linear2: LinearCache


def feed_forward_forward(
    x: torch.Tensor, params: Params
) -> tuple[torch.Tensor, FeedForwardCache]:
    """``ReLU(x W1^T + b1) W2^T + b2``, as :class:`~tvae_lib.transformer.FeedForward`.

    Args:
        x: (..., D).
        params: ``linear1.weight`` (d_ff, D), ``linear1.bias`` (d_ff,),
            ``linear2.weight`` (D, d_ff), ``linear2.bias`` (D,).

    Returns:
        ``(y, cache)`` with y (..., D).
    """
    pre, cache1 = _linear(x, params, "linear1")  # (..., d_ff)
    active = pre > 0
    y, cache2 = _linear(pre * active, params, "linear2")  # ReLU, then (..., D)
    return y, FeedForwardCache(cache1, active, cache2)


def feed_forward_backward(
    grad_y: torch.Tensor, cache: FeedForwardCache
) -> tuple[torch.Tensor, Grads]:
    """Back through ``linear2``, the ReLU (it passes the gradient only where its input
    was positive) and ``linear1``. Returns ``grad_x`` (..., D) and the four by name."""
    grad_hidden, grads = _linear_grads(grad_y, cache.linear2, "linear2")  # (..., d_ff)
    grad_x, grads1 = _linear_grads(grad_hidden * cache.active, cache.linear1, "linear1")
    return grad_x, grads1 | grads


class AttentionBlockCache(NamedTuple):
    """The four projections' caches and the heads' attention cache."""

    q_proj: LinearCache
    k_proj: LinearCache
    v_proj: LinearCache
    attention: AttentionCache  # tensors (B, H, T or S, Dh)
    out_proj: LinearCache


def _split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    batch, length, width = x.shape
    heads = x.reshape(batch, length, n_heads, width // n_heads)  # (B, L, H, Dh)
    return heads.transpose(1, 2)  # (B, H, L, Dh)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)  # (B, L, D)


def multi_head_attention_forward(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    params: Params,
    n_heads: int,
    attn_mask: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, AttentionBlockCache]:
    """Multi-head attention as :class:`~tvae_lib.attention.MultiHeadAttention` does it:
    three separate projections ``q_proj``, ``k_proj``, ``v_proj`` (no fused
    ``in_proj``), H heads attending on their own, merged and projected by ``out_proj``.
    Unlike the library's layer it does not scrub what padded keys and values hold, so
    give it finite inputs (a NaN there would reach every query, as ``0 * NaN``).

    Args:
        query: (B, T, D).
        key, value: (B, S, D).
        params: ``{q,k,v,out}_proj.weight`` (D, D) and ``{q,k,v,out}_proj.bias`` (D,).
        n_heads: H, a divisor of D.
        attn_mask: (T, S) or (B, T, S) bool, ``True`` = allowed.
        key_padding_mask: (B, S) bool, ``True`` at real keys.

    Returns:
        ``(y, cache)`` with y (B, T, D).
    """
    batch, target_len, d_model = tensor_of_rank("query", query, 3, "(B, T, D)").shape
    source_len = tensor_of_rank("key", key, 3, "(B, S, D)").shape[1]
    _check_tensor("key", key, (batch, source_len, d_model), "(B, S, D)", query.dtype)
    _check_tensor("value", value, key.shape, "(B, S, D)", query.dtype)
    if d_model % positive_int("n_heads", n_heads):
        raise ValueError(f"n_heads must divide D={d_model}, got {n_heads}")
    if key_padding_mask is not None:
        bool_mask("key_padding_mask", key_padding_mask, (batch, source_len), "(B, S)")
    if attn_mask is not None:
        batched = isinstance(attn_mask, torch.Tensor) and attn_mask.dim() == 3
        shape = (batch, target_len, source_len) if batched else (target_len, source_len)
        bool_mask("attn_mask", attn_mask, shape, "(T, S) or (B, T, S)")
    q, q_cache = _linear(query, params, "q_proj")  # (B, T, D)
    k, k_cache = _linear(key, params, "k_proj")  # (B, S, D)
    v, v_cache = _linear(value, params, "v_proj")  # (B, S, D)
    heads = (_split_heads(t, n_heads) for t in (q, k, v))  # (B, H, T or S, Dh)
    mask = merge_masks(attn_mask, key_padding_mask)  # broadcastable to (B, H, T, S)
    out, attention = attention_forward(*heads, mask)  # (B, H, T, Dh)
    y, out_cache = _linear(_merge_heads(out), params, "out_proj")  # (B, T, D)
    return y, AttentionBlockCache(q_cache, k_cache, v_cache, attention, out_cache)


def multi_head_attention_backward(
    grad_y: torch.Tensor, cache: AttentionBlockCache
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Grads]:
    """Back through ``out_proj``, the heads' attention and the three input projections.

    Returns:
        ``(grad_query, grad_key, grad_value, grads)``: (B, T, D), (B, S, D), (B, S, D)
        and the projections' gradients by name. In self-attention one ``x`` is query,
        key and value, so its gradient is the sum of the three.
    """
    n_heads = cache.attention.query.shape[1]
    grad_merged, out_grads = _linear_grads(grad_y, cache.out_proj, "out_proj")
    grad_heads = attention_backward(_split_heads(grad_merged, n_heads), cache.attention)
    grad_inputs, grads = [], {}
    names = ("q_proj", "k_proj", "v_proj")
    for name, grad, proj in zip(names, grad_heads, cache[:3], strict=True):
        grad_input, proj_grads = _linear_grads(_merge_heads(grad), proj, name)
        grad_inputs.append(grad_input)  # (B, T or S, D)
        grads |= proj_grads
    return (*grad_inputs, grads | out_grads)
