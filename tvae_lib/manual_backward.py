"""Backward passes written by hand: softmax, LayerNorm and scaled dot-product attention.

Autograd computes these for us; writing them out once shows what it does and why the
Transformer trains well (the softmax Jacobian, LayerNorm's centring of the gradient). Each
operation is a pair of pure functions, ``*_forward`` returning the output and a cache of
what the backward pass needs, and ``*_backward`` mapping the upstream gradient (the gradient
of the loss with respect to the output) to the gradients of the inputs. The small
``torch.autograd.Function`` wrappers at the end plug a pair into autograd, so that
``torch.autograd.gradcheck`` can compare the hand-written gradients with finite differences.

Shapes: B batch, H heads, T query length, S key length, Dh head size, D width.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

__all__ = [
    "softmax_forward",
    "softmax_backward",
    "LayerNormCache",
    "layer_norm_forward",
    "layer_norm_backward",
    "AttentionCache",
    "attention_forward",
    "attention_backward",
    "ManualSoftmax",
    "ManualLayerNorm",
    "ManualAttention",
]


def softmax_forward(x: torch.Tensor) -> torch.Tensor:
    """``y = exp(x - max x) / sum exp(x - max x)`` over the last dimension.

    Args:
        x: (..., S) scores.

    Returns:
        (..., S) probabilities; subtracting the row maximum changes nothing mathematically and
        keeps ``exp`` from overflowing.
    """
    shifted = x - x.amax(dim=-1, keepdim=True)  # (..., S)
    exp = shifted.exp()
    return exp / exp.sum(dim=-1, keepdim=True)  # (..., S)


def softmax_backward(grad_y: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gradient through the softmax: ``dx = y * (dy - sum_j dy_j y_j)``.

    The Jacobian is ``dy_i/dx_j = y_i (delta_ij - y_j)``; multiplying it by ``dy`` gives the
    formula above without ever building the (S, S) matrix.

    Args:
        grad_y: (..., S) gradient of the loss with respect to the softmax output.
        y: (..., S) the softmax output saved by the forward pass.

    Returns:
        (..., S) gradient with respect to the scores ``x``.
    """
    return y * (grad_y - (grad_y * y).sum(dim=-1, keepdim=True))  # (..., S)


class LayerNormCache(NamedTuple):
    """What :func:`layer_norm_backward` needs: the normalised input, 1/std and the gain."""

    x_hat: torch.Tensor  # (..., D)
    inv_std: torch.Tensor  # (..., 1)
    weight: torch.Tensor  # (D,)


def layer_norm_forward(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5
) -> tuple[torch.Tensor, LayerNormCache]:
    """``y = weight * (x - mean) / sqrt(var + eps) + bias`` over the last dimension.

    Args:
        x: (..., D).
        weight: (D,) gain.
        bias: (D,) shift.
        eps: Added to the (biased) variance, as in ``nn.LayerNorm``.

    Returns:
        ``(y, cache)`` with y (..., D).
    """
    if weight.shape != x.shape[-1:] or bias.shape != x.shape[-1:]:
        raise ValueError(
            f"weight and bias must have shape (D={x.shape[-1]},), got {tuple(weight.shape)} "
            f"and {tuple(bias.shape)}"
        )
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
    var = x.var(dim=-1, unbiased=False, keepdim=True)  # (..., 1)
    inv_std = (var + eps).rsqrt()  # (..., 1)
    x_hat = (x - mean) * inv_std  # (..., D)
    return weight * x_hat + bias, LayerNormCache(x_hat, inv_std, weight)


def layer_norm_backward(
    grad_y: torch.Tensor, cache: LayerNormCache
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of LayerNorm.

    With ``g = grad_y * weight`` (the gradient with respect to ``x_hat``):
    ``dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat))``. The two subtracted terms
    remove the parts of ``g`` that would shift the mean or scale the spread of ``x``, which
    the normalisation undoes anyway.

    Args:
        grad_y: (..., D) upstream gradient.
        cache: From :func:`layer_norm_forward`.

    Returns:
        ``(grad_x, grad_weight, grad_bias)``: (..., D), (D,), (D,).
    """
    x_hat, inv_std, weight = cache
    reduce_dims = tuple(range(grad_y.dim() - 1))  # every dimension but D
    grad_weight = (grad_y * x_hat).sum(dim=reduce_dims)  # (D,)
    grad_bias = grad_y.sum(dim=reduce_dims)  # (D,)
    g = grad_y * weight  # (..., D)
    grad_x = inv_std * (
        g - g.mean(dim=-1, keepdim=True) - x_hat * (g * x_hat).mean(dim=-1, keepdim=True)
    )  # (..., D)
    return grad_x, grad_weight, grad_bias


class AttentionCache(NamedTuple):
    """What :func:`attention_backward` needs from the forward pass."""

    query: torch.Tensor  # (..., T, Dh)
    key: torch.Tensor  # (..., S, Dh)
    value: torch.Tensor  # (..., S, Dv)
    weights: torch.Tensor  # (..., T, S), zero rows for fully masked queries


def attention_forward(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, AttentionCache]:
    """``softmax(Q K^T / sqrt(Dh)) V`` with the library's masking rule.

    Args:
        query: (..., T, Dh).
        key: (..., S, Dh).
        value: (..., S, Dv).
        mask: Bool broadcastable to (..., T, S), ``True`` = allowed. A query with no allowed
            key gets zero weights and a zero output, as in :mod:`tvae_lib.attention`.

    Returns:
        ``(output, cache)`` with output (..., T, Dv).
    """
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])  # (..., T, S)
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor (True = allowed), got {mask.dtype}")
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = softmax_forward(scores)  # (..., T, S)
    if mask is not None:
        weights = weights * mask.any(dim=-1, keepdim=True)  # zero rows with no allowed key
    return weights @ value, AttentionCache(query, key, value, weights)  # (..., T, Dv)


def attention_backward(
    grad_out: torch.Tensor, cache: AttentionCache
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of scaled dot-product attention, in the reverse order of the forward pass.

    ``out = P V`` gives ``dV = P^T dout`` and ``dP = dout V^T``; the softmax gives
    ``dScores = softmax_backward(dP, P)``; ``Scores = Q K^T / sqrt(Dh)`` gives
    ``dQ = dScores K / sqrt(Dh)`` and ``dK = dScores^T Q / sqrt(Dh)``. Masked entries have
    ``P = 0``, so ``softmax_backward`` sends them no gradient, and a fully masked row (all
    zero) gets none either.

    Args:
        grad_out: (..., T, Dv) upstream gradient.
        cache: From :func:`attention_forward`.

    Returns:
        ``(grad_query, grad_key, grad_value)`` with the shapes of query, key and value.
    """
    query, key, value, weights = cache
    scale = 1.0 / math.sqrt(query.shape[-1])
    grad_value = weights.transpose(-2, -1) @ grad_out  # (..., S, Dv)
    grad_weights = grad_out @ value.transpose(-2, -1)  # (..., T, S)
    grad_scores = softmax_backward(grad_weights, weights)  # (..., T, S)
    grad_query = grad_scores @ key * scale  # (..., T, Dh)
    grad_key = grad_scores.transpose(-2, -1) @ query * scale  # (..., S, Dh)
    return grad_query, grad_key, grad_value


class ManualSoftmax(torch.autograd.Function):
    """Softmax over the last dimension whose backward is :func:`softmax_backward`."""

    @staticmethod
    def forward(ctx, x):
        y = softmax_forward(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        (y,) = ctx.saved_tensors
        return softmax_backward(grad_y, y)


class ManualLayerNorm(torch.autograd.Function):
    """LayerNorm whose backward is :func:`layer_norm_backward`: ``apply(x, weight, bias, eps)``."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps=1e-5):
        y, cache = layer_norm_forward(x, weight, bias, eps)
        ctx.save_for_backward(*cache)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        grad_x, grad_weight, grad_bias = layer_norm_backward(
            grad_y, LayerNormCache(*ctx.saved_tensors)
        )
        return grad_x, grad_weight, grad_bias, None


class ManualAttention(torch.autograd.Function):
    """Attention whose backward is :func:`attention_backward`: ``apply(q, k, v, mask)``."""

    @staticmethod
    def forward(ctx, query, key, value, mask=None):
        out, cache = attention_forward(query, key, value, mask)
        ctx.save_for_backward(*cache)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        grads = attention_backward(grad_out, AttentionCache(*ctx.saved_tensors))
        return (*grads, None)
