"""Fast autoregressive decoding: a key/value cache for the Transformer decoder.

The naive loop re-runs the decoder over the whole prefix at every step: step ``t`` pushes
``t + 1`` positions through every layer, ``T (T + 1) / 2`` positions for a sequence of T
steps, and its self-attention compares ``t + 1`` queries with ``t + 1`` keys, O(T^3) in all.
But under the causal mask, the outputs at positions ``0..t-1`` never change when a position
is appended, so only the new position needs computing. What it needs from the past are the
keys and values of every earlier position in every self-attention layer: keep them in a
**cache** and append one row per step. The cross-attention's keys and values depend on the
memory only, so they are computed once, before the first step. Each step then processes one
position: O(T) positions per sequence, O(T^2) attention work.

The cached step mirrors :class:`~tvae_lib.transformer.DecoderLayer` exactly, for post-LN and
pre-LN layers, using the layers' public submodules (``self_attn``, ``cross_attn``,
``feed_forward``, ``norm1..3``); it runs in evaluation mode (no dropout).

Shapes: B batch, T target length, S memory length, F features, D d_model, H heads,
Dh head size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tvae_lib.attention import MultiHeadAttention
from tvae_lib.transformer import Decoder, DecoderLayer

__all__ = [
    "LayerCache", "DecoderCache", "decoder_step", "generate", "generate_tvae", "rollout_tvae"
]


@dataclass
class LayerCache:
    """What one decoder layer keeps between steps."""

    cross_keys: torch.Tensor  # (B, H, S, Dh), computed once from the memory
    cross_values: torch.Tensor  # (B, H, S, Dh)
    qkv_weight: torch.Tensor  # (3 D, D): self-attention's q, k, v projections stacked
    qkv_bias: torch.Tensor | None  # (3 D,), or None for projections without bias
    self_keys: torch.Tensor | None = None  # (B, H, t, Dh), one row appended per step
    self_values: torch.Tensor | None = None  # (B, H, t, Dh)


class DecoderCache:
    """The key/value cache of a :class:`~tvae_lib.transformer.Decoder` for one batch.

    Args:
        decoder: The decoder stack.
        memory: (B, S, D) the encoder's output (for the TVAE, the latent code's position).
        memory_key_padding_mask: Optional (B, S) bool, ``True`` at real memory positions.
    """

    def __init__(
        self,
        decoder: Decoder,
        memory: torch.Tensor,
        memory_key_padding_mask: torch.Tensor | None = None,
    ):
        if not isinstance(decoder, Decoder):
            raise TypeError(f"decoder must be a tvae_lib Decoder, got {type(decoder).__name__}")
        d_model = decoder.layers[0].d_model
        if memory.dim() != 3 or memory.shape[-1] != d_model:
            raise ValueError(f"memory must have shape (B, S, D={d_model}), got {tuple(memory.shape)}")
        if memory_key_padding_mask is not None and (
            memory_key_padding_mask.dtype != torch.bool
            or tuple(memory_key_padding_mask.shape) != tuple(memory.shape[:2])
        ):
            raise ValueError(
                f"memory_key_padding_mask must be bool of shape (B, S)={tuple(memory.shape[:2])}, "
                f"got {memory_key_padding_mask.dtype} {tuple(memory_key_padding_mask.shape)}"
            )
        self.batch_size = memory.shape[0]
        self.length = 0  # positions decoded so far
        # (B, 1, 1, S): broadcast over heads and the single query
        self.memory_mask = (
            None if memory_key_padding_mask is None else memory_key_padding_mask[:, None, None, :]
        )
        self.layers = []
        for layer in decoder.layers:
            cross, own = layer.cross_attn, layer.self_attn
            projections = (own.q_proj, own.k_proj, own.v_proj)
            self.layers.append(
                LayerCache(
                    cross_keys=cross.split_heads(cross.k_proj(memory)),  # (B, H, S, Dh)
                    cross_values=cross.split_heads(cross.v_proj(memory)),  # (B, H, S, Dh)
                    # one matrix product per step instead of three (fewer, larger kernels)
                    qkv_weight=torch.cat([p.weight for p in projections]),  # (3 D, D)
                    qkv_bias=None
                    if own.q_proj.bias is None
                    else torch.cat([p.bias for p in projections]),  # (3 D,)
                )
            )


def _cached_self_attention(
    attn: MultiHeadAttention, x: torch.Tensor, cache: LayerCache
) -> torch.Tensor:
    """Self-attention of one new position over itself and every cached one."""
    qkv = F.linear(x, cache.qkv_weight, cache.qkv_bias)  # (B, 1, 3 D): q_proj, k_proj, v_proj
    q, k, v = (attn.split_heads(part) for part in qkv.chunk(3, dim=-1))  # (B, H, 1, Dh) each
    if cache.self_keys is not None:
        k = torch.cat([cache.self_keys, k], dim=2)  # (B, H, t + 1, Dh)
        v = torch.cat([cache.self_values, v], dim=2)  # (B, H, t + 1, Dh)
    cache.self_keys, cache.self_values = k, v
    # No mask: the newest position may see every earlier one (that is the causal mask's row).
    out = F.scaled_dot_product_attention(q, k, v)  # (B, H, 1, Dh)
    return attn.out_proj(attn.merge_heads(out))  # (B, 1, D)


def _cached_cross_attention(
    attn: MultiHeadAttention, x: torch.Tensor, cache: LayerCache, mask: torch.Tensor | None
) -> torch.Tensor:
    """Cross-attention of one new position over the memory's precomputed keys and values."""
    q = attn.split_heads(attn.q_proj(x))  # (B, H, 1, Dh)
    out = F.scaled_dot_product_attention(q, cache.cross_keys, cache.cross_values, attn_mask=mask)
    return attn.out_proj(attn.merge_heads(out))  # (B, 1, D)


def _layer_step(
    layer: DecoderLayer, x: torch.Tensor, cache: LayerCache, memory_mask: torch.Tensor | None
) -> torch.Tensor:
    """:meth:`DecoderLayer.forward` for one new position, without dropout."""
    if layer.norm_first:
        x = x + _cached_self_attention(layer.self_attn, layer.norm1(x), cache)
        x = x + _cached_cross_attention(layer.cross_attn, layer.norm2(x), cache, memory_mask)
        return x + layer.feed_forward(layer.norm3(x))  # (B, 1, D)
    x = layer.norm1(x + _cached_self_attention(layer.self_attn, x, cache))
    x = layer.norm2(x + _cached_cross_attention(layer.cross_attn, x, cache, memory_mask))
    return layer.norm3(x + layer.feed_forward(x))  # (B, 1, D)


def decoder_step(decoder: Decoder, x: torch.Tensor, cache: DecoderCache) -> torch.Tensor:
    """Run one new position through the decoder, reading and extending ``cache``.

    After steps with inputs ``x_0 .. x_t`` (one per call), the output equals position ``t``
    of ``decoder(x_0..t, memory, self_attn_mask=causal_mask(t + 1))``.

    Args:
        decoder: The decoder the cache was built for, in evaluation mode.
        x: (B, 1, D) the embedded input of the new position (positional code included).
        cache: Its :class:`DecoderCache`; updated in place.

    Returns:
        (B, 1, D) the decoder's output at the new position.
    """
    if decoder.training:
        raise ValueError("decoder_step runs in evaluation mode: call decoder.eval() first")
    if not isinstance(cache, DecoderCache) or len(cache.layers) != len(decoder.layers):
        raise ValueError("cache must be a DecoderCache built for this decoder")
    if x.dim() != 3 or tuple(x.shape[:2]) != (cache.batch_size, 1):
        raise ValueError(f"x must have shape (B={cache.batch_size}, 1, D), got {tuple(x.shape)}")
    for layer, layer_cache in zip(decoder.layers, cache.layers, strict=True):
        x = _layer_step(layer, x, layer_cache, cache.memory_mask)  # (B, 1, D)
    cache.length += 1
    return x if decoder.norm is None else decoder.norm(x)


@torch.no_grad()
def generate(
    decoder: Decoder,
    memory: torch.Tensor,
    start: torch.Tensor,
    steps: int,
    embed: Callable[[torch.Tensor, int], torch.Tensor],
    project: Callable[[torch.Tensor], torch.Tensor],
    cached: bool = True,
) -> torch.Tensor:
    """Free-running generation: every output becomes the next step's input.

    Args:
        decoder: The decoder stack, in evaluation mode.
        memory: (B, S, D) what the decoder cross-attends to.
        start: (B, 1, F) the first input (e.g. a zero start vector).
        steps: Number of steps T to generate.
        embed: ``embed(inputs, offset)`` maps inputs (B, L, F) to (B, L, D), adding the
            positional code of positions ``offset .. offset + L - 1``.
        project: Maps decoder outputs (B, L, D) to values (B, L, F).
        cached: Use the key/value cache (one position per step) instead of re-running the
            decoder over the whole prefix at every step.

    Returns:
        (B, T, F) the generated steps (the start vector not included).
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if start.dim() != 3 or start.shape[:2] != (memory.shape[0], 1):
        raise ValueError(f"start must have shape (B={memory.shape[0]}, 1, F), got {tuple(start.shape)}")
    outputs = []
    if cached:
        cache = DecoderCache(decoder, memory)
        current = start  # (B, 1, F)
        for t in range(steps):
            current = project(decoder_step(decoder, embed(current, t), cache))  # (B, 1, F)
            outputs.append(current)
        return torch.cat(outputs, dim=1)  # (B, T, F)
    inputs = start  # (B, 1, F)
    for t in range(steps):
        causal = torch.ones(t + 1, t + 1, dtype=torch.bool, device=memory.device).tril()
        hidden = decoder(embed(inputs, 0), memory, self_attn_mask=causal)  # (B, t + 1, D)
        inputs = torch.cat([inputs, project(hidden[:, -1:])], dim=1)  # (B, t + 2, F)
    return inputs[:, 1:]  # (B, T, F)


def rollout_tvae(model: torch.nn.Module, z: torch.Tensor, length: int) -> torch.Tensor:
    """Free-running decoding through the cache, *differentiable*: for training on own outputs.

    The same numbers as :func:`generate_tvae`, but autograd records every step, so a loss on
    the result trains the decoder on the inputs it will see at inference, its own predictions
    (the cure for exposure bias that teacher forcing leaves behind). The cache makes this
    affordable: one position per step, O(T) positions per sequence. The decoder runs without
    dropout (it is switched to evaluation mode for the call); the rest of the model keeps its
    mode.

    Args:
        model: A ``TransformerVAE``.
        z: (B, Z) latent codes (e.g. reparameterised samples, with gradients).
        length: Number of steps T, at most ``model.config.max_len``.

    Returns:
        (B, T, F) the decoded sequence.
    """
    max_len = model.positional.table.shape[0]
    if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= max_len:
        raise ValueError(f"length must be an int in [1, max_len={max_len}], got {length!r}")
    table = model.positional.table  # (max_len, D)
    decoder_was_training = model.decoder.training
    model.decoder.eval()
    try:
        cache = DecoderCache(model.decoder, model.memory(z))
        current = torch.zeros(z.shape[0], 1, model.output_proj.out_features, device=z.device)
        outputs = []
        for t in range(length):
            embedded = model.target_proj(current) + table[t].to(current.dtype)  # (B, 1, D)
            current = model.output_proj(decoder_step(model.decoder, embedded, cache))  # (B, 1, F)
            outputs.append(current)
        return torch.cat(outputs, dim=1)  # (B, T, F)
    finally:
        model.decoder.train(decoder_was_training)


@torch.no_grad()
def generate_tvae(model: torch.nn.Module, z: torch.Tensor, length: int) -> torch.Tensor:
    """Cached free-running decoding of a :class:`~tvae_lib.tvae.TransformerVAE` from codes ``z``.

    The same computation as ``model.decode_autoregressive(z, length)`` (zero start vector,
    ``target_proj`` plus the sinusoidal code, the decoder attending to ``model.memory(z)``,
    ``output_proj``), one position per step: :func:`rollout_tvae` in evaluation mode, without
    gradients.

    Args:
        model: A ``TransformerVAE`` (put in evaluation mode for the call).
        z: (B, Z) latent codes.
        length: Number of steps T, at most ``model.config.max_len``.

    Returns:
        (B, T, F) generated sequences.
    """
    was_training = model.training
    model.eval()
    try:
        return rollout_tvae(model, z, length)  # under no_grad: nothing is recorded
    finally:
        model.train(was_training)
