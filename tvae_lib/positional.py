"""Positional encodings: telling self-attention where each step sits in the sequence.

Self-attention is permutation-equivariant: shuffle the steps of its input and its output is
shuffled the same way. A positional encoding adds a position-dependent vector to every step
so that order matters. Two kinds are here, both **batch-first only** (inputs are (B, T, D)):

- :class:`SinusoidalPositionalEncoding`, the fixed sine/cosine table of Vaswani et al. (2017);
- :class:`LearnedPositionalEmbedding`, one trained vector per position, as in BERT and GPT.

There is deliberately no ``batch_first`` switch: a module that expects (T, B, D) and is fed
(B, T, D) silently adds the code of position ``b`` to every step of sequence ``b``. Both
modules check the rank, the width D and that T fits in the table, and raise otherwise.

Shapes: B batch, T sequence length, D d_model.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tvae_lib.checks import non_negative_int, positive_int

__all__ = ["sinusoidal_table", "SinusoidalPositionalEncoding", "LearnedPositionalEmbedding"]


def sinusoidal_table(max_len: int, d_model: int) -> torch.Tensor:
    """The sine/cosine table: ``PE[t, 2i] = sin(t / 10000^(2i/D))``, ``PE[t, 2i+1] = cos(...)``.

    Args:
        max_len: Number of positions (rows), at least 1.
        d_model: Width D (columns), at least 1; an odd D drops the last cosine column.

    Returns:
        Float32 tensor of shape (max_len, D) with values in [-1, 1]. Column pair ``(2i, 2i+1)``
        oscillates with wavelength ``2 pi * 10000^(2i/D)`` steps.
    """
    for name, value in (("max_len", max_len), ("d_model", d_model)):
        positive_int(name, value)
    positions = torch.arange(max_len, dtype=torch.float64)[:, None]  # (max_len, 1)
    even_dims = torch.arange(0, d_model, 2, dtype=torch.float64)  # (ceil(D/2),)
    frequencies = torch.exp(-math.log(10000.0) * even_dims / d_model)  # (ceil(D/2),)
    angles = positions * frequencies  # (max_len, ceil(D/2))
    table = torch.zeros(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return table.float()


def _check_input(x: torch.Tensor, d_model: int, max_len: int, offset: int = 0) -> None:
    non_negative_int("offset", offset)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor of shape (B, T, D), got {type(x).__name__}")
    if x.dim() != 3 or x.shape[-1] != d_model:
        raise ValueError(
            f"x must have shape (B, T, D={d_model}) (batch first), got {tuple(x.shape)}"
        )
    if offset + x.shape[1] > max_len:
        raise ValueError(
            f"x has T={x.shape[1]} steps from position {offset} but the positional table holds "
            f"max_len={max_len}; build the module with a larger max_len"
        )


class SinusoidalPositionalEncoding(nn.Module):
    """Add the fixed sinusoidal code of each position, then apply dropout.

    Args:
        d_model: Width D of the inputs.
        max_len: Longest sequence the table covers.
        dropout: Dropout applied to the sum during training (0.1 in the original paper).

    Shape:
        - x: (B, T, D) with T <= max_len
        - output: (B, T, D), ``x + table[:T]``

    The table is a non-persistent buffer named ``table`` (max_len, D): it moves with
    ``.to(device)`` but is not saved in a ``state_dict``, since it is a pure function of
    ``max_len`` and ``d_model``.
    """

    def __init__(self, d_model: int, max_len: int = 512, dropout: float = 0.0):
        super().__init__()
        self.d_model = d_model
        self.max_len = max_len
        self.register_buffer("table", sinusoidal_table(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Add the codes of positions ``offset .. offset + T - 1`` to ``x`` (B, T, D).

        ``offset`` serves step-by-step decoding, where ``x`` is the newest position only.
        """
        _check_input(x, self.d_model, self.max_len, offset)
        table = self.table[offset : offset + x.shape[1]]  # (T, D)
        return self.dropout(x + table.to(x.dtype))  # (B, T, D)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEmbedding(nn.Module):
    """Add a trained vector per position (an ``nn.Embedding`` table), then apply dropout.

    Args:
        d_model: Width D of the inputs.
        max_len: Number of positions that get a vector; longer inputs raise ``ValueError``.
        dropout: Dropout applied to the sum during training.

    Shape:
        - x: (B, T, D) with T <= max_len
        - output: (B, T, D), ``x + table.weight[:T]``

    The vectors start small (normal, std 0.02, as in BERT and GPT-2), so the model first sees
    its inputs nearly unchanged and learns how much position to mix in.
    """

    def __init__(self, d_model: int, max_len: int = 512, dropout: float = 0.0):
        super().__init__()
        for name, value in (("max_len", max_len), ("d_model", d_model)):
            positive_int(name, value)
        self.d_model = d_model
        self.max_len = max_len
        self.table = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.table.weight, std=0.02)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Add the vectors of positions ``offset .. offset + T - 1`` to ``x`` (B, T, D)."""
        _check_input(x, self.d_model, self.max_len, offset)
        # Rows 0..T-1 of the table are the embeddings of positions 0..T-1; slicing the weight
        # is the same as looking up arange(T) and avoids building the index tensor.
        table = self.table.weight[offset : offset + x.shape[1]]  # (T, D)
        return self.dropout(x + table.to(x.dtype))  # (B, T, D)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"
