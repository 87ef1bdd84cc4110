"""Sequence to sequence with LSTMs: an encoder, three decoders and greedy decoding.

The encoder reads the source ids and hands the decoder a :class:`Memory`: every encoder
state, its final state (the fixed-length *context*) and which source steps are real. The
decoders differ only in how much of that memory they use:

- :class:`Decoder` starts from the context and then sees nothing of the source again;
- :class:`PeekyDecoder` also feeds the context to every step (Cho et al., 2014);
- :class:`AttentionDecoder` looks at *all* encoder states at every step, through
  dot-product attention (Luong et al., 2015) or, as :class:`AdditiveAttentionDecoder`,
  Bahdanau et al.'s (2015) additive attention.

Training feeds the decoder the true previous character (teacher forcing); :func:`greedy_decode`
feeds it its own previous choice. Shapes: B batch, S source length, T target length,
D the LSTMs' hidden size (the width of the context), V vocabulary size, E embedding size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from tvae_lib.attention import AdditiveAttention, scaled_dot_product_attention
from tvae_lib.checks import one_of, positive_int

__all__ = [
    "Memory",
    "Encoder",
    "Decoder",
    "PeekyDecoder",
    "AttentionDecoder",
    "AdditiveAttentionDecoder",
    "Seq2SeqConfig",
    "Seq2Seq",
    "greedy_decode",
    "exact_match",
    "seq2seq_step",
    "check_ids",
]

State = tuple[torch.Tensor, torch.Tensor]  # the LSTM's (h, c), each (1, B, D)


class Memory(NamedTuple):
    """What the encoder hands the decoder.

    Attributes:
        outputs: (B, S, D) the encoder's state after every source step.
        context: (B, D) its final hidden state, the fixed-length summary of the source.
        mask: (B, S) bool, ``True`` at real (non-padding) source steps, or ``None``.
    """

    outputs: torch.Tensor
    context: torch.Tensor
    mask: torch.Tensor | None


class Encoder(nn.Module):
    """Embedding and a one-layer LSTM over the source ids.

    Args:
        vocab_size: V.
        embed_dim: E.
        hidden_size: D.
        pad_id: The padding id; its steps are marked ``False`` in :attr:`Memory.mask`.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, pad_id: int | None):
        super().__init__()
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True)

    def forward(self, src: torch.Tensor) -> tuple[Memory, State]:
        """Encode (B, S) ids into a :class:`Memory` and the final LSTM state (h, c)."""
        outputs, (h, c) = self.lstm(self.embedding(src))  # (B, S, D); (1, B, D) each
        mask = None if self.pad_id is None else src != self.pad_id  # (B, S)
        return Memory(outputs, h[-1], mask), (h, c)


class Decoder(nn.Module):
    """An LSTM language model over the target, started from the encoder's final state.

    Args:
        vocab_size: V.
        embed_dim: E.
        hidden_size: D.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, vocab_size)

    def forward(
        self, tgt_in: torch.Tensor, state: State, memory: Memory
    ) -> tuple[torch.Tensor, State, torch.Tensor | None]:
        """Score the next character after each of ``tgt_in``'s steps.

        Args:
            tgt_in: (B, T) decoder input ids (``_`` then the answer, shifted right).
            state: The LSTM state (h, c) to start from, each (1, B, D).
            memory: The encoder's :class:`Memory`.

        Returns:
            ``(logits, state, weights)``: logits (B, T, V), the final state, and the attention
            weights (B, T, S) (``None`` for decoders without attention).
        """
        hidden, state = self.lstm(self.embedding(tgt_in), state)  # (B, T, D)
        return self.out(hidden), state, None  # (B, T, V)


class PeekyDecoder(Decoder):
    """A decoder that sees the context at every step, in its LSTM's input and its output layer."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int):
        super().__init__(vocab_size, embed_dim, hidden_size)
        # The context joins every step's input and output, so both layers are wider.
        self.lstm = nn.LSTM(embed_dim + hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(2 * hidden_size, vocab_size)

    def forward(self, tgt_in, state, memory):
        """Like :meth:`Decoder.forward`, with ``memory.context`` joined to every step."""
        context = memory.context[:, None, :].expand(-1, tgt_in.shape[1], -1)  # (B, T, D)
        inputs = torch.cat([self.embedding(tgt_in), context], dim=-1)  # (B, T, E + D)
        hidden, state = self.lstm(inputs, state)  # (B, T, D)
        return self.out(torch.cat([hidden, context], dim=-1)), state, None  # (B, T, V)


class AttentionDecoder(Decoder):
    """A decoder whose every step attends over all encoder states.

    The LSTM's output ``h_t`` is the query. With ``score="dot"`` (Luong et al.'s "general"
    score) it is projected and scored against every encoder state by scaled dot product; with
    ``score="additive"`` (Bahdanau et al.'s score, :class:`~tvae_lib.attention.AdditiveAttention`)
    a small MLP scores each pair. Padding steps are masked out, and the weighted sum of encoder
    states, the step's own context, is combined with ``h_t`` before the output layer.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, score: str = "dot"):
        super().__init__(vocab_size, embed_dim, hidden_size)
        self.score = one_of("score", score, ("dot", "additive"))
        if score == "dot":
            self.query_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        else:
            self.additive = AdditiveAttention(hidden_size, hidden_size, hidden_size)
        self.combine = nn.Linear(2 * hidden_size, hidden_size)

    def forward(self, tgt_in, state, memory):
        """Like :meth:`Decoder.forward`; also returns the attention weights (B, T, S)."""
        hidden, state = self.lstm(self.embedding(tgt_in), state)  # (B, T, D)
        mask = None if memory.mask is None else memory.mask[:, None, :]  # (B, 1, S)
        if self.score == "dot":
            query = self.query_proj(hidden)  # (B, T, D)
            context, weights = scaled_dot_product_attention(
                query, memory.outputs, memory.outputs, mask
            )  # (B, T, D), (B, T, S)
        else:
            context, weights = self.additive(hidden, memory.outputs, memory.outputs, mask)
        attended = torch.tanh(self.combine(torch.cat([hidden, context], dim=-1)))  # (B, T, D)
        return self.out(attended), state, weights  # (B, T, V)


class AdditiveAttentionDecoder(AttentionDecoder):
    """:class:`AttentionDecoder` with Bahdanau's additive score."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int):
        super().__init__(vocab_size, embed_dim, hidden_size, score="additive")


_DECODERS = {"plain": Decoder, "peeky": PeekyDecoder, "attention": AttentionDecoder,
             "additive": AdditiveAttentionDecoder}


@dataclass
class Seq2SeqConfig:
    """Sizes and choices of a :class:`Seq2Seq` model."""

    vocab_size: int  # V, the number of distinct characters
    start_id: int  # the id the decoder starts from ("_")
    pad_id: int | None = None  # the source padding id, masked out by attention
    embed_dim: int = 16  # E, the size of each character's embedding
    hidden_size: int = 128  # D, the LSTM state size (the context's size)
    decoder: str = "plain"  # "plain", "peeky", "attention" (dot product) or "additive"


class Seq2Seq(nn.Module):
    """An encoder and one of the decoders, trained with teacher forcing.

    Args:
        config: The model's :class:`Seq2SeqConfig`.
    """

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        if config.decoder not in _DECODERS:
            raise ValueError(f"decoder must be one of {sorted(_DECODERS)}, got {config.decoder!r}")
        self.config = config
        sizes = (config.vocab_size, config.embed_dim, config.hidden_size)
        self.encoder = Encoder(*sizes, pad_id=config.pad_id)
        self.decoder = _DECODERS[config.decoder](*sizes)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: (B, S) source and (B, T) decoder inputs -> (B, T, V) logits."""
        check_ids("src", src)
        check_ids("tgt_in", tgt_in)
        if src.shape[0] != tgt_in.shape[0]:
            raise ValueError(
                f"src (B, S) and tgt_in (B, T) must share B, got {tuple(src.shape)} and "
                f"{tuple(tgt_in.shape)}"
            )
        memory, state = self.encoder(src)
        logits, _, _ = self.decoder(tgt_in, state, memory)
        return logits  # (B, T, V)

    @torch.no_grad()
    def generate(self, src: torch.Tensor, max_len: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Greedy decoding; see :func:`greedy_decode`."""
        return greedy_decode(self, src, max_len)


def greedy_decode(
    model: Seq2Seq, src: torch.Tensor, max_len: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Write ``max_len`` characters, each the decoder's most likely one given its own previous.

    Args:
        model: A :class:`Seq2Seq` model.
        src: (B, S) source ids.
        max_len: T, the number of characters to write (the start symbol is not counted).

    Returns:
        ``(ids, weights)``: ids (B, T) and, for an attention decoder, the attention weights
        (B, T, S) of every written character (``None`` otherwise).
    """
    check_ids("src", src)
    positive_int("max_len", max_len)
    memory, state = model.encoder(src)
    token = torch.full((src.shape[0], 1), model.config.start_id, device=src.device)  # (B, 1)
    ids, weights = [], []
    for _ in range(max_len):
        logits, state, step_weights = model.decoder(token, state, memory)  # (B, 1, V)
        token = logits.argmax(dim=-1)  # (B, 1): feed the choice back in
        ids.append(token)
        weights.append(step_weights)
    attention = None if weights[0] is None else torch.cat(weights, dim=1)  # (B, T, S)
    return torch.cat(ids, dim=1), attention  # (B, T)


def exact_match(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose every position is right (padding included), a scalar tensor.

    Args:
        predicted: (B, T) ids.
        target: (B, T) ids.
    """
    if predicted.shape != target.shape:
        raise ValueError(
            f"predicted and target must have the same shape (B, T), got "
            f"{tuple(predicted.shape)} and {tuple(target.shape)}"
        )
    return (predicted == target).all(dim=1).float().mean()


def seq2seq_step(
    model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], label_smoothing: float = 0.0
) -> dict[str, torch.Tensor]:
    """One step for :func:`tvae_lib.training.fit`: teacher-forced cross-entropy.

    The decoder reads ``t[:, :-1]`` (``"_62 "``) and is scored on ``t[:, 1:]`` (``"62  "``).
    In evaluation mode (``fit``'s validation) it also decodes greedily and reports the exact
    match, so the history records ``val_exact_match`` per epoch.

    Args:
        model: A :class:`Seq2Seq` or :class:`~tvae_lib.transformer_seq2seq.TransformerSeq2Seq`:
            ``model(src, tgt_in)`` gives logits and ``model.generate(src, T)`` greedy ids.
        batch: ``(x, t)``: source ids (B, S) and decoder ids (B, T + 1), the start symbol first.
        label_smoothing: Share of the target probability spread over all ids (0.1 in the
            original Transformer); the reported loss includes it.

    Returns:
        ``{"loss", "char_acc"}`` and, in evaluation mode, ``"exact_match"``.
    """
    src, tgt = batch
    tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]  # (B, T) each
    logits = model(src, tgt_in)  # (B, T, V)
    loss = F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), label_smoothing=label_smoothing)
    out = {"loss": loss, "char_acc": (logits.argmax(-1) == tgt_out).float().mean()}
    if not model.training:
        predicted, _ = model.generate(src, tgt_out.shape[1])
        out["exact_match"] = exact_match(predicted, tgt_out)
    return out


def check_ids(name: str, ids: torch.Tensor) -> None:
    """Raise unless ``ids`` is an int64 tensor of shape (B, L)."""
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype != torch.long:
        got = f"{ids.dtype} {tuple(ids.shape)}" if isinstance(ids, torch.Tensor) else type(ids)
        raise ValueError(f"{name} must be an int64 tensor of shape (B, L), got {got}")
