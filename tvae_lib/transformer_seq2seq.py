"""A whole Transformer encoder-decoder for token sequences, built from the library's layers.

The model of Vaswani et al. (2017) on the addition task of chapters 1 and 2, so the LSTMs and
the Transformer can be compared on one problem:

1. source ids (B, S) -> embedding (initialised N(0, 1/D)) scaled by sqrt(D), so each vector
   has unit scale like the positional code -> sinusoidal positions -> (B, S, D);
2. :class:`~tvae_lib.transformer.Encoder` with the source padding masked out -> memory (B, S, D);
3. decoder input ids (B, T) (the start symbol, then the answer shifted right) -> embedding and
   positions -> :class:`~tvae_lib.transformer.Decoder` under the causal mask, attending to the
   memory -> (B, T, D);
4. a linear layer -> logits (B, T, V).

:meth:`TransformerSeq2Seq.generate` decodes greedily through
:func:`tvae_lib.decoding.generate`, with the key/value cache: each step's logits are the next
step's input, embedded through their most likely id. Its interface matches
:class:`tvae_lib.seq2seq.Seq2Seq`, so :func:`tvae_lib.seq2seq.seq2seq_step` trains both.

Shapes: B batch, S source length, T target length, D d_model, V vocabulary size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tvae_lib.checks import fraction, positive_int
from tvae_lib.decoding import generate
from tvae_lib.masks import causal_mask
from tvae_lib.positional import SinusoidalPositionalEncoding
from tvae_lib.seq2seq import check_ids
from tvae_lib.transformer import Decoder, DecoderLayer, Encoder, EncoderLayer

__all__ = ["TransformerSeq2SeqConfig", "TransformerSeq2Seq"]


@dataclass
class TransformerSeq2SeqConfig:
    """Sizes of a :class:`TransformerSeq2Seq`."""

    vocab_size: int  # V
    start_id: int  # the id the decoder starts from
    pad_id: int | None = None  # the source padding id, masked out of every attention to it
    d_model: int = 64  # D
    n_heads: int = 4  # H
    d_ff: int = 256  # the feed-forward blocks' hidden width
    n_layers: int = 2  # encoder layers, and as many decoder layers
    dropout: float = 0.0
    max_len: int = 64  # longest source or target the positional table covers

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "n_heads", "d_ff", "n_layers", "max_len"):
            positive_int(name, getattr(self, name))
        fraction("dropout", self.dropout)
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model must be a multiple of n_heads, got {self.d_model} and {self.n_heads}"
            )


class TransformerSeq2Seq(nn.Module):
    """The original encoder-decoder Transformer (post-LN), for token ids.

    Args:
        config: The sizes.

    Shape:
        - src: (B, S) int64 ids; tgt_in: (B, T) int64 ids, the start id first
        - output of ``forward``: (B, T, V) logits
    """

    def __init__(self, config: TransformerSeq2SeqConfig):
        super().__init__()
        if not isinstance(config, TransformerSeq2SeqConfig):
            raise TypeError(f"config must be a TransformerSeq2SeqConfig, got {type(config)}")
        self.config = config
        d, h, ff, p = config.d_model, config.n_heads, config.d_ff, config.dropout
        self.src_embedding = nn.Embedding(config.vocab_size, d)
        self.tgt_embedding = nn.Embedding(config.vocab_size, d)
        self.positional = SinusoidalPositionalEncoding(d, max_len=config.max_len, dropout=p)
        self.encoder = Encoder(EncoderLayer(d, h, ff, dropout=p), config.n_layers)
        self.decoder = Decoder(DecoderLayer(d, h, ff, dropout=p), config.n_layers)
        self.out = nn.Linear(d, config.vocab_size)
        for embedding in (self.src_embedding, self.tgt_embedding):
            # N(0, 1/D) entries, times sqrt(D) on the way in: unit-scale vectors, like the
            # positional code. nn.Embedding's N(0, 1) times sqrt(D) would drown the positions.
            nn.init.normal_(embedding.weight, std=d**-0.5)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Source ids (B, S) -> ``(memory (B, S, D), mask (B, S) or None)``."""
        check_ids("src", src)
        mask = None if self.config.pad_id is None else src != self.config.pad_id  # (B, S)
        h = self.src_embedding(src) * math.sqrt(self.config.d_model)  # (B, S, D)
        return self.encoder(self.positional(h), key_padding_mask=mask), mask

    def _embed_targets(self, ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Decoder input ids (B, L) at positions offset.. -> (B, L, D)."""
        h = self.tgt_embedding(ids) * math.sqrt(self.config.d_model)
        return self.positional(h, offset=offset)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: (B, S) source and (B, T) decoder inputs -> (B, T, V) logits."""
        check_ids("tgt_in", tgt_in)
        memory, mask = self.encode(src)
        if tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"src and tgt_in must share B, got {tuple(src.shape)} and "
                             f"{tuple(tgt_in.shape)}")  # fmt: skip
        t = tgt_in.shape[1]
        h = self.decoder(
            self._embed_targets(tgt_in), memory,
            self_attn_mask=causal_mask(t, device=src.device), memory_key_padding_mask=mask,
        )  # fmt: skip
        return self.out(h)  # (B, T, V)

    @torch.no_grad()
    def generate(
        self, src: torch.Tensor, max_len: int, cached: bool = True
    ) -> tuple[torch.Tensor, None]:
        """Greedy decoding of ``max_len`` ids; returns ``(ids (B, T), None)``.

        ``None`` stands where :class:`~tvae_lib.seq2seq.Seq2Seq` returns attention weights.
        ``cached=False`` runs the naive loop over the whole prefix (same ids).
        """
        max_len = positive_int("max_len", max_len)
        memory, mask = self.encode(src)
        start = F.one_hot(torch.full((src.shape[0], 1), self.config.start_id, device=src.device),
                          self.config.vocab_size).to(memory.dtype)  # (B, 1, V)  # fmt: skip
        logits = generate(
            self.decoder, memory, start, max_len,
            embed=lambda x, offset: self._embed_targets(x.argmax(-1), offset),
            project=self.out, cached=cached, memory_key_padding_mask=mask,
        )  # fmt: skip
        return logits.argmax(-1), None  # (B, T)
