"""The keys and values one attention layer keeps between decoding steps.

:class:`~tvae_lib.attention.MultiHeadAttention` takes an optional :class:`KVCache` (as
torchtune's attention layers do), so a decoder layer's forward is the same code with and
without one; :class:`~tvae_lib.decoding.DecoderCache` holds one per attention layer of a
decoder. Chapter 8 explains what the cache saves and what it does not.

Shapes: B batch, H heads, L positions held, Dh head size, D d_model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["KVCache"]


@dataclass
class KVCache:
    """The keys and values one attention layer keeps between decoding steps.

    A *growing* cache (self-attention) appends the keys and values of each new position;
    a *static* one (cross-attention over a fixed memory) is filled on its first use and read
    from then on, so the memory's projections are computed once.

    When no gradient is recorded, a growing cache writes each new position into a buffer
    with room for ``capacity`` positions (doubled when full), so a step copies one position
    instead of the whole past; with autograd on (training on the decoder's own outputs) it
    concatenates, as a buffer written in place would break the backward pass.

    Attributes:
        static: Fill once, then reuse (cross-attention) instead of appending (self-attention).
        capacity: Positions to make room for at the first append (e.g. the steps to decode).
        keys: (B, H, L, Dh) or ``None`` before the first use.
        values: (B, H, L, Dh) or ``None``.
        fused_projection: ``(weight (3 D, D), bias (3 D,) or None)``: the query, key and
            value projections stacked into one, made at the first self-attention step and
            reused (the weights cannot change while a cache is in use).
        output: (B, 1, D), a static cache of one unmasked position only: the attention's
            output, the same for every query (a single key gets weight 1).
        made_with_grad: Whether autograd was on when the tensors derived from the weights
            (a static cache's keys, values and output, the fused projection) were made;
            switching it makes them again, so a gradient never goes silently missing. (A
            growing cache's past positions stay as they were computed.)
    """

    static: bool = False
    capacity: int = 0
    keys: torch.Tensor | None = None
    values: torch.Tensor | None = None
    fused_projection: tuple[torch.Tensor, torch.Tensor | None] | None = None
    output: torch.Tensor | None = None
    made_with_grad: bool | None = None
    _buffers: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    @property
    def length(self) -> int:
        """Positions held so far."""
        return 0 if self.keys is None else self.keys.shape[2]

    def refresh(self) -> None:
        """Forget what was derived from the weights under the other autograd mode."""
        self.made_with_grad = torch.is_grad_enabled()
        self.fused_projection = self.output = None
        if self.static:
            self.keys = self.values = None

    def append(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Append new positions' keys and values, each (B, H, new, Dh), to a growing cache."""
        past, new = self.length, keys.shape[2]
        if keys.requires_grad or values.requires_grad:
            if self.keys is not None:
                keys = torch.cat([self.keys, keys], dim=2)  # (B, H, past + new, Dh)
                values = torch.cat([self.values, values], dim=2)
            self.keys, self.values, self._buffers = keys, values, None
            return
        if self._buffers is None or self._buffers[0].shape[2] < past + new:
            room = max(self.capacity, past + new, 2 * past)
            shape = (*keys.shape[:2], room, keys.shape[3])  # (B, H, room, Dh)
            buffers = (keys.new_empty(shape), values.new_empty(shape))
            if past:
                buffers[0][:, :, :past] = self.keys
                buffers[1][:, :, :past] = self.values
            self._buffers = buffers
        key_buffer, value_buffer = self._buffers
        key_buffer.narrow(2, past, new).copy_(keys)
        value_buffer.narrow(2, past, new).copy_(values)
        self.keys = key_buffer.narrow(2, 0, past + new)  # (B, H, past + new, Dh), a view
        self.values = value_buffer.narrow(2, 0, past + new)
