"""The addition task: character-level problems such as ``"57+5"`` -> ``"62"``.

A toy sequence-to-sequence problem, small enough to train on a CPU in seconds and hard
enough to show what a fixed-length context costs. Every problem is a string over a vocabulary
of 13 characters: the digits, ``+``, the padding space and ``_``, the start symbol the decoder
is given before it writes its first digit.

- A question ``"57+5"`` is padded with spaces to ``QUESTION_LEN`` = 7 characters.
- An answer ``"62"`` becomes the decoder sequence ``"_62  "`` of ``TARGET_LEN`` = 5
  characters: the decoder reads ``"_62 "`` and learns to write ``"62  "`` (teacher forcing).

Shapes: N problems, S = 7 question characters, T + 1 = 5 decoder characters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

__all__ = [
    "VOCAB",
    "PAD",
    "START",
    "CHAR_TO_ID",
    "PAD_ID",
    "START_ID",
    "QUESTION_LEN",
    "TARGET_LEN",
    "AdditionData",
    "make_problems",
    "encode",
    "decode",
    "load_addition",
    "make_loader",
]

VOCAB = "0123456789+ _"  # a digit's id is its value
PAD, START = " ", "_"
CHAR_TO_ID = {char: index for index, char in enumerate(VOCAB)}
PAD_ID, START_ID = CHAR_TO_ID[PAD], CHAR_TO_ID[START]
MAX_DIGITS = 3
QUESTION_LEN = 2 * MAX_DIGITS + 1  # "999+999"
TARGET_LEN = 1 + MAX_DIGITS + 1  # "_1998"


class AdditionData(NamedTuple):
    """The addition problems as padded id tensors, split into training and held-out sets.

    Attributes:
        x_train: (N_train, S) int64 question ids.
        t_train: (N_train, T + 1) int64 decoder ids, ``_`` first.
        x_test: (N_test, S) int64 question ids.
        t_test: (N_test, T + 1) int64 decoder ids.
        questions_test: The held-out questions as plain strings, e.g. ``"57+5"``.
        answers_test: Their answers as plain strings, e.g. ``"62"``.
    """

    x_train: torch.Tensor
    t_train: torch.Tensor
    x_test: torch.Tensor
    t_test: torch.Tensor
    questions_test: list[str]
    answers_test: list[str]


def make_problems(n: int = 50_000, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` distinct problems ``a+b`` with 0 <= a, b <= 999, in random order.

    Each operand first draws its number of digits (1, 2 or 3, equally likely), then a number
    of that many digits. Only 100 distinct one-digit pairs exist, so the shortest problems,
    such as ``"7+1"``, are rare (100 of the default 50,000). No pair ``(a, b)`` occurs twice, so a held-out problem was never trained on, and
    the list is shuffled, so any slice of it has problems of every length.

    Args:
        n: How many problems (at most 1,000,000, the number of distinct pairs).
        seed: Seed of the NumPy generator; the same seed gives the same problems.

    Returns:
        ``[(question, answer), ...]``, e.g. ``("57+5", "62")``.
    """
    if not isinstance(n, int) or not 1 <= n <= 10 ** (2 * MAX_DIGITS):
        raise ValueError(f"n must be an int in [1, {10 ** (2 * MAX_DIGITS)}], got {n!r}")
    rng = np.random.default_rng(seed)
    low = np.array([0] + [10 ** (d - 1) for d in range(2, MAX_DIGITS + 1)])  # smallest d-digit
    high = np.array([10**d for d in range(1, MAX_DIGITS + 1)])  # one past the largest
    seen: set[tuple[int, int]] = set()
    problems = []
    while len(problems) < n:
        digits = rng.integers(0, MAX_DIGITS, size=(n, 2))  # digit counts - 1, one row a problem
        pairs = rng.integers(low[digits], high[digits])  # (n, 2) operands
        for a, b in pairs.tolist():
            if (a, b) not in seen and len(problems) < n:
                seen.add((a, b))
                problems.append((f"{a}+{b}", str(a + b)))
    # Short problems run out of new pairs first; shuffle so every split has every length.
    return [problems[i] for i in rng.permutation(n)]


def encode(texts: Iterable[str], length: int) -> torch.Tensor:
    """Turn strings into a padded id tensor.

    Args:
        texts: N strings over ``VOCAB``, each at most ``length`` characters long.
        length: The padded length L; shorter strings are padded with spaces on the right.

    Returns:
        (N, L) int64 ids.
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    rows = []
    for i, text in enumerate(texts):
        if len(text) > length:
            raise ValueError(f"texts[{i}] = {text!r} is longer than length={length}")
        unknown = sorted(set(text) - set(VOCAB))
        if unknown:
            raise ValueError(f"texts[{i}] = {text!r} has characters {unknown} not in {VOCAB!r}")
        rows.append([CHAR_TO_ID[char] for char in text.ljust(length, PAD)])
    return torch.tensor(rows, dtype=torch.long).reshape(len(rows), length)  # (N, L)


def decode(ids: torch.Tensor | Sequence[Sequence[int]], strip: bool = True) -> list[str]:
    """Turn an id tensor back into strings; the inverse of :func:`encode`.

    Args:
        ids: (N, L) integer ids, or a single sequence (L,).
        strip: Remove the padding spaces (and a leading start symbol ``_``).

    Returns:
        N strings.
    """
    ids = torch.as_tensor(ids)
    if ids.dim() == 1:
        ids = ids[None]  # (1, L)
    if ids.dim() != 2 or ids.dtype.is_floating_point:
        raise ValueError(f"ids must be an integer tensor of shape (N, L), got {tuple(ids.shape)}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= len(VOCAB)):
        raise ValueError(f"ids must lie in [0, {len(VOCAB) - 1}], got {ids.min()}..{ids.max()}")
    texts = ["".join(VOCAB[i] for i in row) for row in ids.tolist()]
    return [text.lstrip(START).strip(PAD) for text in texts] if strip else texts


def load_addition(
    n: int = 50_000, n_test: int = 5_000, seed: int = 0, reverse: bool = False
) -> AdditionData:
    """Make the problems, encode them and split off the last ``n_test`` as held-out.

    Args:
        n: Number of problems in all.
        n_test: How many of them are held out.
        seed: Seed for :func:`make_problems`.
        reverse: Reverse every padded question, ``"57+5   "`` -> ``"   5+75"`` (the trick
            of Sutskever et al., 2014).

    Returns:
        The padded tensors and the held-out strings.
    """
    if not isinstance(n_test, int) or not 1 <= n_test < n:
        raise ValueError(f"n_test must be an int in [1, n={n}), got {n_test!r}")
    problems = make_problems(n, seed)
    questions = [question for question, _ in problems]
    answers = [answer for _, answer in problems]
    x = encode(questions, QUESTION_LEN)  # (N, S)
    if reverse:
        x = x.flip(-1)  # (N, S), the question read right to left
    t = encode([START + answer for answer in answers], TARGET_LEN)  # (N, T + 1)
    split = n - n_test
    return AdditionData(
        x[:split], t[:split], x[split:], t[split:], questions[split:], answers[split:]
    )


def make_loader(
    x: torch.Tensor,
    t: torch.Tensor,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """Batches of ``(x, t)``, fetched a whole batch at a time (no per-sample collation).

    Args:
        x: (N, S) question ids.
        t: (N, T + 1) decoder ids.
        batch_size: Problems per batch B.
        shuffle: Reshuffle every epoch.
        generator: Seeded generator for the shuffling, for reproducible epochs.

    Returns:
        A ``DataLoader`` yielding ``(x, t)`` with shapes (B, S) and (B, T + 1).
    """
    if x.shape[0] != t.shape[0]:
        raise ValueError(
            f"x and t must hold the same N problems, got {x.shape[0]} and {t.shape[0]}"
        )
    dataset = TensorDataset(x, t)
    order = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    sampler = BatchSampler(order, batch_size=batch_size, drop_last=False)
    return DataLoader(dataset, sampler=sampler, batch_size=None)  # TensorDataset takes a list
