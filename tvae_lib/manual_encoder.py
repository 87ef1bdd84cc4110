"""A whole post-LN encoder layer, forward and backward by hand (chapter 5).

The layer of :class:`tvae_lib.transformer.EncoderLayer` with ``norm_first=False`` and no
dropout, ``x1 = LN1(x + SelfAttention(x))`` and ``y = LN2(x1 + FeedForward(x1))``, built from
the linear, feed-forward and attention passes of :mod:`tvae_lib.manual_layers` and the
LayerNorm of :mod:`tvae_lib.manual_backward`; the backward pass runs the chain rule through
them in reverse, with the residual connections adding their gradients. Parameters and their
gradients are named as in the layer's ``named_parameters()``, and :func:`check_encoder_layer`
compares the result with autograd's for a library layer, in float64.

Shapes: B batch, T length, D d_model, H heads.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch

from tvae_lib.checks import tensor_of_rank
from tvae_lib.manual_backward import LayerNormCache, layer_norm_backward, layer_norm_forward
from tvae_lib.manual_layers import (
    AttentionBlockCache,
    FeedForwardCache,
    Grads,
    Params,
    _check_tensor,
    _param,
    _sub,
    feed_forward_backward,
    feed_forward_forward,
    multi_head_attention_backward,
    multi_head_attention_forward,
)
from tvae_lib.transformer import EncoderLayer

__all__ = ["EncoderLayerCache", "encoder_layer_forward", "encoder_layer_backward"]
__all__ += ["check_encoder_layer"]


class EncoderLayerCache(NamedTuple):
    """The caches of the post-LN encoder layer's sublayers."""

    self_attn: AttentionBlockCache
    norm1: LayerNormCache
    feed_forward: FeedForwardCache
    norm2: LayerNormCache


def _layer_norm(x: torch.Tensor, params: Params, name: str, eps: float):
    weight, bias = _param(params, f"{name}.weight"), _param(params, f"{name}.bias")
    for key, tensor in ((f"{name}.weight", weight), (f"{name}.bias", bias)):
        _check_tensor(f"params[{key!r}]", tensor, x.shape[-1:], "(D,)", x.dtype)
    return layer_norm_forward(x, weight, bias, eps)


def encoder_layer_forward(
    x: torch.Tensor,
    params: Params,
    n_heads: int,
    attn_mask: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, EncoderLayerCache]:
    """A post-LN :class:`~tvae_lib.transformer.EncoderLayer` without dropout:
    ``x1 = LN1(x + SelfAttn(x))``, ``y = LN2(x1 + FF(x1))``.

    Args:
        x: (B, S, D).
        params: As in ``EncoderLayer.named_parameters()``.
        n_heads: H.
        attn_mask: (S, S) or (B, S, S) bool, ``True`` = may attend.
        key_padding_mask: (B, S) bool, ``True`` at real steps.
        eps: The LayerNorms' epsilon.

    Returns:
        ``(y, cache)`` with y (B, S, D).
    """
    x = tensor_of_rank("x", x, 3, "(B, S, D)")
    attended, attn = multi_head_attention_forward(
        x, x, x, _sub(params, "self_attn"), n_heads, attn_mask, key_padding_mask
    )  # (B, S, D)
    x1, norm1 = _layer_norm(x + attended, params, "norm1", eps)  # (B, S, D)
    fed, ff = feed_forward_forward(x1, _sub(params, "feed_forward"))  # (B, S, D)
    y, norm2 = _layer_norm(x1 + fed, params, "norm2", eps)  # (B, S, D)
    return y, EncoderLayerCache(attn, norm1, ff, norm2)


def encoder_layer_backward(
    grad_y: torch.Tensor, cache: EncoderLayerCache
) -> tuple[torch.Tensor, Grads]:
    """The encoder layer's forward pass read backwards.

    A residual ``s = x + F(x)`` passes its gradient ``ds`` to ``x`` twice, straight and
    through ``F``'s backward, and the two add; self-attention uses ``x`` as query, key
    and value, so those three gradients add too.

    Args:
        grad_y: (B, S, D) upstream gradient.
        cache: From :func:`encoder_layer_forward`.

    Returns:
        ``(grad_x, grads)``: (B, S, D), and each parameter's gradient under its name in
        ``EncoderLayer.named_parameters()``.
    """
    x = cache.self_attn.q_proj.x  # (B, S, D)
    _check_tensor("grad_y", grad_y, x.shape, "(B, S, D)", x.dtype)
    grad_sum2, *norm2 = layer_norm_backward(grad_y, cache.norm2)  # sum2 = x1 + FF(x1)
    grad_x1_branch, ff_grads = feed_forward_backward(grad_sum2, cache.feed_forward)
    grad_x1 = grad_sum2 + grad_x1_branch  # the residual: straight, plus the branch
    grad_sum1, *norm1 = layer_norm_backward(grad_x1, cache.norm1)  # sum1 = x + attn
    *grad_qkv, attn_grads = multi_head_attention_backward(grad_sum1, cache.self_attn)
    grad_x = grad_sum1 + sum(grad_qkv)  # straight, plus as query, key and value
    grads = {f"self_attn.{k}": v for k, v in attn_grads.items()}
    grads |= {f"feed_forward.{k}": v for k, v in ff_grads.items()}
    for name, (grad_weight, grad_bias) in (("norm1", norm1), ("norm2", norm2)):
        grads |= {f"{name}.weight": grad_weight, f"{name}.bias": grad_bias}
    return grad_x, grads


def check_encoder_layer(
    layer: EncoderLayer,
    x: torch.Tensor,
    grad_y: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
) -> dict[str, float]:
    """The largest ``|by hand - autograd|`` of a post-LN encoder layer's output and of
    each gradient, on a float64 copy of ``layer`` in evaluation mode (``layer`` itself
    is untouched), so that float32 rounding cannot hide a wrong gradient.

    Args:
        layer: A post-LN :class:`~tvae_lib.transformer.EncoderLayer`.
        x: (B, S, D) floating-point input.
        grad_y: (B, S, D) upstream gradient; by default standard normal, from a
            generator of its own seeded with 0 so that the result repeats.
        attn_mask, key_padding_mask: As :class:`~tvae_lib.transformer.EncoderLayer`
            takes them.

    Returns:
        ``{"output": ..., "x": ..., name: ...}``: the output, the input's gradient, then
        one entry per name of ``layer.named_parameters()``, in that order.
    """
    if not isinstance(layer, EncoderLayer):
        raise TypeError(f"layer must be an EncoderLayer, got {type(layer).__name__}")
    if layer.norm_first:
        raise ValueError("layer must be post-LN (norm_first=False), got a pre-LN one")
    x = tensor_of_rank("x", x, 3, "(B, S, D)").detach().to(torch.float64)
    layer = copy.deepcopy(layer).to(torch.float64).eval()
    params = {name: p.detach() for name, p in layer.named_parameters()}
    masks = {"attn_mask": attn_mask, "key_padding_mask": key_padding_mask}
    eps = layer.norm1.eps
    y, cache = encoder_layer_forward(x, params, layer.n_heads, **masks, eps=eps)
    if grad_y is None:
        generator = torch.Generator().manual_seed(0)
        grad_y = torch.randn(y.shape, generator=generator, dtype=y.dtype).to(y.device)
    elif isinstance(grad_y, torch.Tensor):
        grad_y = grad_y.detach().to(torch.float64)
    grad_x, grads = encoder_layer_backward(grad_y, cache)
    with torch.enable_grad():  # autograd's answer, from the same float64 copy
        leaf = x.clone().requires_grad_(True)
        y_autograd = layer(leaf, **masks)
        theirs = torch.autograd.grad(y_autograd, [leaf, *layer.parameters()], grad_y)
    ours = [y, grad_x, *(grads[name] for name in params)]
    theirs = [y_autograd.detach(), *theirs]
    pairs = zip(["output", "x", *params], ours, theirs, strict=True)
    return {key: (a - b).abs().max().item() for key, a, b in pairs}
