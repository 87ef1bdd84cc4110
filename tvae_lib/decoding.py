"""Autoregressive decoding: every output becomes the next step's input.

The naive loop re-runs the decoder over the whole prefix at every step: step ``t`` pushes
``t + 1`` positions through every layer, ``T (T + 1) / 2`` positions for a sequence of T
steps. Under the causal mask, though, the outputs at positions ``0..t-1`` never change when a
position is appended, so only the new position needs computing, given the keys and values of
every earlier position in every self-attention layer. :class:`DecoderCache` keeps them (one :class:`~tvae_lib.kv_cache.KVCache` per attention layer) and
:meth:`Decoder.forward <tvae_lib.transformer.Decoder.forward>` extends it in place, so the
cached loop below runs the very same layer code as the naive one, one position per step:
O(T) positions per sequence. The per-step attention still compares the new query with all
``t + 1`` cached keys, so the attention work grows as O(T^2) in all, against O(T^3) naively.

Three more savings keep the loop near its floor, one teacher-forced pass over the same
positions (``python -m tvae_lib.bench`` measures all three):

* without gradients the cache writes each new key and value into a preallocated buffer
  instead of copying the whole past at every step;
* a memory of one position (the TVAE's z) gives the same cross-attention output at every step
  (its single key gets weight 1), so that output is computed once;
* without gradients, a step's single query attends by two small matrix products
  (:func:`~tvae_lib.attention.attend_one_query`) instead of PyTorch's fused kernel, whose
  fixed cost per call is made for many queries: about a third less, and the same to about
  1e-7 (with gradients, the fused kernel stays, so training is unchanged);
* a step's arithmetic is tiny (one position), so what the layers' forward adds around it
  (module calls, shape checks and mask merges, and autograd's bookkeeping) took a fifth to a
  quarter of its time. Without hooks or active dropout, every step after the first (which
  runs the layers' forward and so checks the shapes) goes through ``_lean_step`` instead, in
  inference mode when no gradient is recorded: the same operations on the same tensors, so
  the same bits and, with autograd on, the same gradients, with the weights looked up once
  and the layer norms and (inactive) dropouts called without their modules.

The loop records gradients when autograd is on (a model trained on its own outputs uses it),
and none under ``torch.no_grad()``.

Shapes: B batch, T steps, S memory length, F features, D d_model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from tvae_lib.attention import MultiHeadAttention, attend_one_query
from tvae_lib.checks import non_negative_int, positive_int
from tvae_lib.kv_cache import KVCache
from tvae_lib.masks import causal_mask
from tvae_lib.transformer import Decoder, DecoderLayer, residual

__all__ = ["LayerCache", "DecoderCache", "generate"]


@dataclass
class LayerCache:
    """What one decoder layer keeps between steps: its two attentions' keys and values."""

    self_attn: KVCache = field(default_factory=KVCache)
    cross_attn: KVCache = field(default_factory=lambda: KVCache(static=True))


class DecoderCache:
    """The key/value cache of one :class:`~tvae_lib.transformer.Decoder` for one batch.

    Under the causal mask, the outputs at earlier positions never change when a position is
    appended, so autoregressive decoding only needs the new position, plus the keys and values
    of every earlier one in every self-attention layer (kept here, one row appended per step)
    and the memory's keys and values (computed once). Each step then costs one position
    instead of the whole prefix: O(T) positions per sequence instead of O(T^2).

    The cache remembers its decoder and the version of every weight: using it with another
    decoder, or after the weights changed (an optimiser step, ``load_state_dict``), raises
    instead of silently mixing keys computed by different weights.

    Args:
        decoder: The decoder it serves.
        capacity: Positions to make room for in each self-attention cache (the steps you
            will decode); without gradients, each step then writes one position in place
            instead of copying the whole past. More positions still fit (the room doubles).
    """

    def __init__(self, decoder: Decoder, capacity: int = 0):
        if not isinstance(decoder, Decoder):
            raise TypeError(f"decoder must be a tvae_lib Decoder, got {type(decoder).__name__}")
        capacity = non_negative_int("capacity", capacity)
        self._decoder_id = id(decoder)
        self._parameters = list(decoder.parameters())  # listed once: a step only reads them
        self._versions = _weight_versions(self._parameters)
        self.layers = [
            LayerCache(self_attn=KVCache(capacity=capacity)) for _ in decoder.layers
        ]
        self.length = 0  # positions decoded so far

    def check(self, decoder: Decoder) -> None:
        """Raise unless the cache was built for ``decoder`` and its weights have not changed."""
        if id(decoder) != self._decoder_id:
            raise ValueError("this DecoderCache was built for another decoder")
        if _weight_versions(self._parameters) != self._versions:
            raise ValueError(
                "the decoder's weights changed since this DecoderCache was built: its keys and "
                "values are stale; build a new cache"
            )


def _weight_versions(parameters: list[nn.Parameter]) -> tuple[int, ...]:
    """In-place modification counters of the parameters (bumped by optimisers and loads)."""
    return tuple(p._version for p in parameters)


def generate(
    decoder: Decoder,
    memory: torch.Tensor,
    start: torch.Tensor,
    steps: int,
    embed: Callable[[torch.Tensor, int], torch.Tensor],
    project: Callable[[torch.Tensor], torch.Tensor],
    cached: bool = True,
    memory_key_padding_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Free-running generation: every output becomes the next step's input.

    Args:
        decoder: The decoder stack.
        memory: (B, S, D) what the decoder cross-attends to.
        start: (B, 1, F) the first input (e.g. a zero start vector).
        steps: Number of steps T to generate.
        embed: ``embed(inputs, offset)`` maps inputs (B, L, F) to (B, L, D), adding the
            positional code of positions ``offset .. offset + L - 1``.
        project: Maps decoder outputs (B, L, D) to values (B, L, F).
        cached: Keep the past keys and values in a :class:`DecoderCache` and run one position
            per step (``True``), or re-run the decoder over the whole prefix at every step.
        memory_key_padding_mask: Optional (B, S) bool, ``True`` at real memory positions.

    Returns:
        (B, T, F) the generated steps (the start vector not included).
    """
    steps = positive_int("steps", steps)
    if not isinstance(decoder, Decoder):
        raise TypeError(f"decoder must be a tvae_lib Decoder, got {type(decoder).__name__}")
    if not isinstance(memory, torch.Tensor) or memory.dim() != 3:
        raise ValueError(f"memory must have shape (B, S, D), got {getattr(memory, 'shape', memory)}")
    if not isinstance(start, torch.Tensor) or start.dim() != 3 or (
        tuple(start.shape[:2]) != (memory.shape[0], 1)
    ):
        got = tuple(start.shape) if isinstance(start, torch.Tensor) else type(start).__name__
        raise ValueError(f"start must have shape (B={memory.shape[0]}, 1, F), got {got}")
    if cached:
        cache = DecoderCache(decoder, capacity=steps)
        # The first step runs the layers' own forward, which checks every shape and fills the
        # caches; later steps take the lean path when nothing would tell the two apart.
        # Without gradients, inference mode skips autograd's bookkeeping (version counters,
        # view tracking) on every small operation; the result, concatenated outside it, is an
        # ordinary tensor.
        lean = _runs_plain(decoder)
        current, outputs, step = start, [], None  # (B, 1, F)
        with torch.inference_mode(lean and not torch.is_grad_enabled()):
            for t in range(steps):
                x = embed(current, t)  # (B, 1, D)
                if step is not None:
                    hidden = step(x)  # (B, 1, D)
                else:
                    hidden = decoder(x, memory, cache=cache,
                                     memory_key_padding_mask=memory_key_padding_mask)  # fmt: skip
                    if lean:
                        step = _lean_step(decoder, cache, memory, memory_key_padding_mask)
                current = project(hidden)  # (B, 1, F)
                outputs.append(current)
        return torch.cat(outputs, dim=1)  # (B, T, F)
    inputs = start  # (B, 1, F)
    for t in range(steps):
        mask = causal_mask(t + 1, device=memory.device)  # (t + 1, t + 1)
        hidden = decoder(embed(inputs, 0), memory, self_attn_mask=mask,
                         memory_key_padding_mask=memory_key_padding_mask)  # (B, t + 1, D)
        inputs = torch.cat([inputs, project(hidden)[:, -1:]], dim=1)  # (B, t + 2, F)
    return inputs[:, 1:]  # (B, T, F)


def _runs_plain(*roots: nn.Module) -> bool:
    """Whether the modules' forward adds nothing to their arithmetic: no hooks, no dropout."""
    hooks = (nn.modules.module._global_forward_hooks, nn.modules.module._global_forward_pre_hooks)
    if any(hooks):
        return False
    for module in (m for root in roots for m in root.modules()):
        if module._forward_hooks or module._forward_pre_hooks:
            return False  # a hook expects its module to be called
        if module.training and (
            (isinstance(module, nn.Dropout) and module.p > 0)
            or (isinstance(module, MultiHeadAttention) and module.dropout > 0)
        ):
            return False
    return True


def _lean_step(
    decoder: Decoder,
    cache: DecoderCache,
    memory: torch.Tensor,
    memory_key_padding_mask: torch.Tensor | None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function that runs one new position (B, 1, D) through every layer of ``decoder``.

    The same operations as ``decoder(x, memory, cache=cache)``, in the same order on the same
    tensors and through the same :func:`~tvae_lib.transformer.residual`, so the same bits,
    without what the layers' forward adds around the arithmetic: the attention and
    feed-forward modules' calls, their shape checks and mask merges. Autograd records the
    same graph through it. Valid only where that forward adds nothing to the arithmetic (see
    ``_runs_plain``), and after a first step through the layers' forward, which checks the
    shapes and fills the caches: the fused query/key/value weights and a one-position
    memory's constant cross-attention output.
    """
    layers = [_lean_layer(layer, layer_cache, memory, memory_key_padding_mask)
              for layer, layer_cache in zip(decoder.layers, cache.layers, strict=True)]  # fmt: skip

    final_norm = None if decoder.norm is None else _plain_norm(decoder.norm)

    def step(x: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            x = layer(x)  # (B, 1, D)
        cache.length += 1
        return x if final_norm is None else final_norm(x)

    return step


def _plain_norm(norm: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """A layer norm's own call, ``F.layer_norm`` with its weights, without the module call."""
    if type(norm) is not nn.LayerNorm:
        return norm  # another normalisation: call it as it is
    return functools.partial(F.layer_norm, normalized_shape=norm.normalized_shape,
                             weight=norm.weight, bias=norm.bias, eps=norm.eps)  # fmt: skip


def _unchanged(x: torch.Tensor) -> torch.Tensor:
    """What an inactive dropout does (``_runs_plain`` vouches that none is active)."""
    return x


def _lean_layer(
    layer: DecoderLayer,
    layer_cache: LayerCache,
    memory: torch.Tensor,
    memory_key_padding_mask: torch.Tensor | None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """One decoder layer of :func:`_lean_step`, its weights looked up once."""
    attn, own, cross = layer.self_attn, layer_cache.self_attn, layer_cache.cross_attn
    qkv_weights = own.fused_projection  # made at the first step
    out_weights = (attn.out_proj.weight, attn.out_proj.bias)
    ff = layer.feed_forward
    w1, b1, w2, b2 = ff.linear1.weight, ff.linear1.bias, ff.linear2.weight, ff.linear2.bias
    norm1, norm2, norm3 = (_plain_norm(n) for n in (layer.norm1, layer.norm2, layer.norm3))
    # the attention the layer's forward picks for one query, for the same bits (see
    # one_query_decoding: here a cache, one query, no dropout; the grad mode is the loop's)
    attend = F.scaled_dot_product_attention if torch.is_grad_enabled() else attend_one_query

    def attend_self(h: torch.Tensor) -> torch.Tensor:  # the new query over every cached key
        qkv = F.linear(h, *qkv_weights)  # (B, 1, 3 D)
        q, k, v = (attn.split_heads(p) for p in qkv.chunk(3, -1))  # (B, H, 1, Dh) each
        own.append(k, v)
        out = attend(q, own.keys, own.values)  # (B, H, 1, Dh)
        return F.linear(attn.merge_heads(out), *out_weights)  # (B, 1, D)

    def attend_memory(h: torch.Tensor) -> torch.Tensor:
        if cross.output is not None:  # one memory position: the same output at every step
            return cross.output  # (B, 1, D)
        return layer.cross_attn(h, memory, memory, key_padding_mask=memory_key_padding_mask,
                                cache=cross)[0]  # fmt: skip

    def feed_forward(h: torch.Tensor) -> torch.Tensor:
        return F.linear(F.relu(F.linear(h, w1, b1)), w2, b2)  # (B, 1, D)

    def run(x: torch.Tensor) -> torch.Tensor:
        x = residual(x, attend_self, norm1, _unchanged, layer.norm_first)
        x = residual(x, attend_memory, norm2, _unchanged, layer.norm_first)
        return residual(x, feed_forward, norm3, _unchanged, layer.norm_first)

    return run
