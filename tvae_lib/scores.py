"""Judging generated sequences: the TimeGAN evaluation protocol, for padded data too.

Yoon et al. (2019) judge a generator of time series with two *post-hoc* models, trained after
the fact on real and generated data and deliberately small (a one-layer GRU whose hidden size
is half the number of channels, trained for a fixed number of iterations with Adam):

- the **discriminative score**: a GRU classifier learns to tell real sequences (label 1) from
  generated ones (label 0) on 80% of each; on the held-out 20% the score is
  ``|accuracy - 0.5|``. Zero means the classifier cannot do better than a coin. (When the two
  sets differ in size, the accuracy is the balanced one, the mean of the accuracies on each
  set, so that a classifier that always answers the larger set still scores 0.)
- the **predictive score** ("train on synthetic, test on real"): a GRU learns, on generated
  sequences only, to predict the next step of the last channel from the other channels; the
  score is its mean absolute error on the real sequences. Lower is better.

The two-dimensional views of real vs generated data the paper plots are in
:mod:`tvae_lib.views`.

**Padding.** Sequences of different lengths are stored padded to a common T, and a classifier
that reads the padding learns "how much padding" instead of "real or generated": on a real and
a generated set that differed only in their padding, the discriminator scored 0.49, as if they
were trivially told apart. So every function takes ``real_lengths`` and ``generated_lengths``
((N,) ints in [1, T]; ``None``: all T steps are real) and looks at real steps only. The
discriminator reads each sequence up to its own last real step (a packed sequence) and
classifies from the hidden state there; the predictor is trained and scored on real target
steps only. Padded positions are
set to 0 on the way in, so whatever they hold (NaN, inf, 1e20) cannot reach a score, while a
non-finite value at a real step is an error. Without lengths, or with every length equal to T,
the numbers are exactly those of the unpadded protocol.

Shapes: N (or M) sequences, T steps, F channels, B batch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from tqdm.auto import tqdm

from tvae_lib import checks
from tvae_lib.masks import padding_mask

__all__ = [
    "GRUClassifier",
    "GRUPredictor",
    "discriminative_score",
    "predictive_score",
    "StackedGRU",
    "discriminative_scores",
    "predictive_scores",
    "discriminative_score_sets",
    "predictive_score_sets",
]

Lengths = checks.Lengths


class GRUClassifier(nn.Module):
    """A one-layer GRU whose last hidden state is mapped to one logit (real vs generated).

    Args:
        n_features: Channels F of the input.
        hidden_size: Width of the GRU state.

    Shape:
        - x: (B, T, F)
        - lengths: optional (B,) ints; the GRU then stops at each sequence's own last real
          step (a packed sequence), so it never reads padding
        - output: (B,) logits, positive for "real"
    """

    def __init__(self, n_features: int, hidden_size: int) -> None:
        super().__init__()
        self.gru = nn.GRU(n_features, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None:
            x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, last = self.gru(x)  # (1, B, hidden), in the batch's own order
        return self.head(last[0]).squeeze(-1)  # (B,)


class GRUPredictor(nn.Module):
    """A one-layer GRU that predicts a value in [0, 1] at every step (a sigmoid output).

    It reads left to right: its output at a step never depends on later (padded) steps.

    Args:
        n_features: Channels of the input.
        hidden_size: Width of the GRU state.

    Shape:
        - x: (B, T, F)
        - output: (B, T) predictions in (0, 1)
    """

    def __init__(self, n_features: int, hidden_size: int) -> None:
        super().__init__()
        self.gru = nn.GRU(n_features, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(x)  # (B, T, hidden)
        return torch.sigmoid(self.head(states)).squeeze(-1)  # (B, T)


class StackedGRU(nn.Module):
    """R independent one-layer GRUs (PyTorch's equations), computed together.

    A post-hoc GRU of the protocol is tiny, so training one costs mostly the fixed overhead of
    its many small operations, step after step. Stacking R of them along a leading axis runs
    R trainings for little more than the price of one; :func:`discriminative_scores` and
    :func:`predictive_scores` use it for repeated runs.

    Args:
        grus: R ``nn.GRU`` modules of one layer with the same sizes; their weights are copied.

    Shape:
        - x: (R, B, T, F), the batch of run r in ``x[r]``
        - lengths: optional (R, B) ints; a sequence's state stops at its own last real step
        - output: ``(states, last)``, states (R, B, T, H) and last (R, B, H)
    """

    def __init__(self, grus) -> None:
        super().__init__()
        grus = list(grus)
        if not grus or any(not isinstance(g, nn.GRU) or g.num_layers != 1 or g.bidirectional
                           or not g.bias for g in grus):  # fmt: skip
            raise ValueError("grus must be one or more one-layer, one-way nn.GRU with biases")
        names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
        for name in names:
            shapes = {tuple(getattr(g, name).shape) for g in grus}
            if len(shapes) > 1:
                raise ValueError(f"grus must share their sizes; {name} has shapes {shapes}")
            stacked = torch.stack([getattr(g, name).detach() for g in grus]).clone()
            self.register_parameter(name[:-3], nn.Parameter(stacked))  # weight_ih: (R, 3H, F)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None):
        runs, batch, steps, _ = x.shape
        # the input's share of the three gates, for every step at once: (R, B, T, 3H)
        from_x = torch.matmul(x.reshape(runs, batch * steps, -1), self.weight_ih.transpose(1, 2))
        from_x = from_x.reshape(runs, batch, steps, -1) + self.bias_ih[:, None, None, :]
        weight_hh = self.weight_hh.transpose(1, 2)  # (R, H, 3H)
        h = x.new_zeros(runs, batch, self.weight_hh.shape[2])  # (R, B, H)
        states = []
        size = h.shape[-1]
        # one tensor per step (unbind): indexing one big tensor step by step would make its
        # backward pass build a zero tensor of the whole size at every step
        x_gates, x_n = from_x[..., : 2 * size].unbind(2), from_x[..., 2 * size :].unbind(2)
        for t in range(steps):  # as few operations per step as possible: they cost the time
            from_h = torch.baddbmm(self.bias_hh[:, None, :], h, weight_hh)  # (R, B, 3H)
            gates = torch.sigmoid(x_gates[t] + from_h[..., : 2 * size])
            r, z = gates[..., :size], gates[..., size:]  # the reset and update gates
            n = torch.tanh(torch.addcmul(x_n[t], r, from_h[..., 2 * size :]))  # candidate
            new = torch.lerp(n, h, z)  # (1 - z) n + z h
            h = new if lengths is None else torch.where((lengths > t)[..., None], new, h)
            states.append(h)
        return torch.stack(states, dim=2), h


class _StackedModels(nn.Module):
    """R :class:`GRUClassifier` or R :class:`GRUPredictor` models (weights copied), stacked."""

    def __init__(self, models) -> None:
        super().__init__()
        self.gru = StackedGRU(m.gru for m in models)
        self.head_weight = nn.Parameter(torch.stack([m.head.weight.detach()[0] for m in models]))
        self.head_bias = nn.Parameter(torch.stack([m.head.bias.detach() for m in models]))

    def _head(self, h: torch.Tensor) -> torch.Tensor:  # (R, B, [T,] H) -> (R, B, [T])
        shape = (len(h), *[1] * (h.dim() - 2), h.shape[-1])
        return (h * self.head_weight.view(shape)).sum(-1) + self.head_bias.view(shape[:-1])

    def logits(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self._head(self.gru(x, lengths)[1])  # (R, B): GRUClassifier's output, per run

    def predictions(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self._head(self.gru(x)[0]))  # (R, B, T): GRUPredictor's, per run


def _train(make: Callable[[], nn.Module], loss_of_batch: Callable, n_items: int, iterations: int,
           batch_size: int, lr: float, seed: int, device, progress: bool, what: str) -> nn.Module:
    """A model made from ``seed``, then Adam on random mini-batches (no repeats in a batch).

    The global random generator is left alone. The post-hoc models are tiny, so on the CPU one
    thread is fastest (several spend more time synchronising than computing); the thread count
    is restored afterwards.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make().to(device)
    return _adam(model, loss_of_batch, lambda: torch.randperm(n_items, generator=generator)[
        :batch_size], iterations, lr, progress, what)  # fmt: skip


def _adam(model: nn.Module, loss_of_batch: Callable, draw_index: Callable, iterations: int,
          lr: float, progress: bool, what: str) -> nn.Module:
    """``iterations`` Adam steps on ``loss_of_batch(model, draw_index())``, on one thread."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)  # elementwise: stacked runs apart
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model.train()
    try:
        for _ in tqdm(range(iterations), disable=not progress, desc=what):
            loss = loss_of_batch(model, draw_index())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
        model.eval()
    return model


def _train_runs(make: Callable[[], nn.Module], loss_of_batch: Callable, n_items: int,
                iterations: int, batch_size: int, lr: float, seeds: list[int], device,
                progress: bool, what: str) -> _StackedModels:
    """:func:`_train` for every seed at once: run r starts from the weights ``make()`` gives
    after seeding with ``seeds[r]`` and draws its own batches from a generator of that seed.
    ``loss_of_batch(model, index)`` gets (R, B) indices and returns the sum over runs of each
    run's loss, so each run's weights get the gradient of its own loss only."""
    with torch.random.fork_rng(devices=[]):
        models = []
        for seed in seeds:
            torch.manual_seed(seed)
            models.append(make())
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]

    def draw_index() -> torch.Tensor:  # (R, B): each run's own batch
        return torch.stack([torch.randperm(n_items, generator=g)[:batch_size]
                            for g in generators]).to(device)  # fmt: skip

    return _adam(_StackedModels(models).to(device), loss_of_batch, draw_index, iterations, lr,
                 progress, what)


def _seed_list(seeds) -> list[int]:
    seeds = [checks.non_negative_int("seeds", seed) for seed in seeds]
    if not seeds or len(set(seeds)) < len(seeds):
        raise ValueError(f"seeds must hold at least one seed, each once, got {seeds}")
    return seeds


def _training_args(n_features, hidden_size, iterations, batch_size, lr, seed):
    hidden_size = max(1, n_features // 2) if hidden_size is None else hidden_size
    return (checks.positive_int("hidden_size", hidden_size),
            checks.positive_int("iterations", iterations),
            checks.positive_int("batch_size", batch_size),
            checks.positive_float("lr", lr), checks.non_negative_int("seed", seed))


def _discriminator_data(real, generated, real_lengths, generated_lengths, train_fraction, seed,
                        device) -> tuple:
    """The pooled training and test sets of one discriminator run, split with ``seed``.

    Returns ``(x_train, y_train, lengths_train, x_test, y_test, lengths_test)``: x (N, T, F)
    on ``device``, y (N,) with 1 for real, lengths (N,) on the CPU or ``None`` when every
    sequence has all T steps.
    """
    max_len = max(real.shape[1], generated.shape[1])
    packed = not ((real_lengths == max_len).all() and (generated_lengths == max_len).all())
    rng = np.random.default_rng(seed)
    parts = []  # (x, lengths) of real train, real test, generated train, generated test
    for data, lengths in ((real, real_lengths), (generated, generated_lengths)):
        if data.shape[1] < max_len:  # only where lengths let the two T differ
            data = np.pad(data, ((0, 0), (0, max_len - data.shape[1]), (0, 0)))
        order = rng.permutation(len(data))
        n_train = min(max(int(round(train_fraction * len(data))), 1), len(data) - 1)
        parts += [(data[i], lengths[i]) for i in (order[:n_train], order[n_train:])]

    def pooled(a, b) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        x = torch.from_numpy(np.concatenate([a[0], b[0]])).to(device)  # (Na + Nb, T, F)
        y = torch.cat([torch.ones(len(a[0])), torch.zeros(len(b[0]))]).to(device)  # (Na + Nb,)
        lengths = torch.from_numpy(np.concatenate([a[1], b[1]])) if packed else None  # CPU
        return x, y, lengths

    return (*pooled(parts[0], parts[2]), *pooled(parts[1], parts[3]))


def _checked_discriminator_args(real, generated, real_lengths, generated_lengths, train_fraction):
    real, generated, real_lengths, generated_lengths = checks.real_and_generated(
        real, generated, real_lengths, generated_lengths)
    train_fraction = checks.fraction("train_fraction", train_fraction, low_open=True)
    for name, data in (("real", real), ("generated", generated)):
        if len(data) < 2:
            raise ValueError(f"{name} needs >= 2 sequences, one to train on and one to test on; "
                             f"got N={len(data)}")
    return real, generated, real_lengths, generated_lengths, train_fraction


def discriminative_score(
    real, generated, hidden_size: int | None = None, iterations: int = 2000,
    batch_size: int = 128, train_fraction: float = 0.8, lr: float = 1e-3, seed: int = 0,
    device: torch.device | str = "cpu", progress: bool = False, *,
    real_lengths: Lengths = None, generated_lengths: Lengths = None,
) -> float:
    """``|accuracy - 0.5|`` of a post-hoc GRU classifier of real vs generated sequences.

    Each set is split at random into ``train_fraction`` for training and the rest (at least
    one sequence each) for testing; the classifier is trained for ``iterations`` mini-batches
    of the pooled training sequences and its accuracy is measured on the pooled test sequences
    (threshold 0.5; balanced, the mean of the accuracies on the real and on the generated test
    sequences, when the two differ in number). With lengths, it reads each sequence up to its
    own last real step only.

    Args:
        real: (N, T, F) real sequences (array or tensor), N >= 2.
        generated: (M, T', F) generated sequences, M >= 2; T' = T unless lengths are given.
        hidden_size: GRU width; ``None`` gives TimeGAN's ``max(1, F // 2)``.
        iterations: Number of Adam steps (2,000 in TimeGAN).
        batch_size: Sequences per step (128 in TimeGAN).
        train_fraction: Share of each set used for training, in (0, 1).
        lr: Adam's learning rate.
        seed: Seeds the split, the initial weights and the batches.
        device: Where the small GRU runs (the CPU is usually fastest for it).
        progress: Show a tqdm bar.
        real_lengths: (N,) ints in [1, T], real steps per sequence; ``None``: all T.
        generated_lengths: (M,) ints in [1, T']; ``None``: all T'.

    Returns:
        The score, in [0, 0.5]; 0 when real and generated cannot be told apart.

    Raises:
        TypeError, ValueError: A bad argument; the message names it.
    """
    real, generated, real_lengths, generated_lengths, train_fraction = (
        _checked_discriminator_args(real, generated, real_lengths, generated_lengths,
                                    train_fraction))
    hidden_size, iterations, batch_size, lr, seed = _training_args(
        real.shape[2], hidden_size, iterations, batch_size, lr, seed)
    x_train, y_train, lengths_train, x_test, y_test, lengths_test = _discriminator_data(
        real, generated, real_lengths, generated_lengths, train_fraction, seed, device)
    loss_fn = nn.BCEWithLogitsLoss()

    def loss_of_batch(model: nn.Module, i: torch.Tensor) -> torch.Tensor:
        return loss_fn(model(x_train[i], None if lengths_train is None else lengths_train[i]),
                       y_train[i])

    model = _train(lambda: GRUClassifier(real.shape[2], hidden_size), loss_of_batch,
                   len(x_train), iterations, batch_size, lr, seed, device, progress,
                   "discriminator")
    with torch.no_grad():
        predicted_real = model(x_test, lengths_test) > 0  # (N_test,)
    return abs(_balanced_accuracy(predicted_real, y_test).item() - 0.5)


def _balanced_accuracy(predicted_real: torch.Tensor, y_test: torch.Tensor) -> torch.Tensor:
    """The mean of the accuracies on the real and on the generated test sequences, (...,).

    With test sets of different sizes, the plain accuracy rewards a classifier that always
    answers the larger class (it would score 5 real against 1 generated at 5/6, far from a
    coin's 0.5); the balanced one gives it 0.5. With equal sizes the two are the same number,
    so the plain one, computed as before, keeps its bits.
    """
    is_real = y_test.bool()  # (..., N_test), the same split in every row
    correct = (predicted_real == is_real).float()
    n_real = is_real.sum(dim=-1)  # (...,)
    n_test = is_real.shape[-1]
    if bool((2 * n_real == n_test).all()):
        return correct.mean(dim=-1)
    on_real = (correct * is_real).sum(dim=-1) / n_real
    on_generated = (correct * ~is_real).sum(dim=-1) / (n_test - n_real)
    return (on_real + on_generated) / 2


def _checked_predictor_args(real, generated, real_lengths, generated_lengths):
    real, generated, real_lengths, generated_lengths = checks.real_and_generated(
        real, generated, real_lengths, generated_lengths)
    if real.shape[2] < 2:
        raise ValueError(f"predictive_score needs F >= 2 (it predicts the last channel from the "
                         f"others), got F={real.shape[2]}")
    for name, lengths in (("real", real_lengths), ("generated", generated_lengths)):
        if lengths.min() < 2:
            raise ValueError(f"{name}_lengths (or T) must be >= 2 for predictive_score: a "
                             f"length-1 sequence has no next step to predict; got {lengths.min()}")
    return real, generated, real_lengths, generated_lengths


def _predictor_data(x: np.ndarray, lengths: np.ndarray, device) -> tuple:
    """``(inputs (N, T-1, F-1), targets (N, T-1), mask (N, T-1) or None)`` of the predictor:
    the first F - 1 channels of steps 0..T-2, the last channel of steps 1..T-1, and True at
    the real targets 1..L-1 (``None`` when every sequence has all T steps)."""
    full = bool((lengths == x.shape[1]).all())
    mask = None if full else padding_mask(torch.from_numpy(lengths - 1), x.shape[1] - 1)
    x = torch.from_numpy(x).to(device)
    return x[:, :-1, :-1], x[:, 1:, -1], None if full else mask.to(device)


def predictive_score(
    real, generated, hidden_size: int | None = None, iterations: int = 5000,
    batch_size: int = 128, lr: float = 1e-3, seed: int = 0, device: torch.device | str = "cpu",
    progress: bool = False, *, real_lengths: Lengths = None, generated_lengths: Lengths = None,
) -> float:
    """Train on synthetic, test on real: next-step error of a GRU trained on generated data.

    As in TimeGAN, the GRU reads the first ``F - 1`` channels of steps ``0..T-2`` and predicts
    the last channel at steps ``1..T-1``, with a sigmoid output (data scaled to [0, 1]) and an
    L1 loss. It is trained on ``generated`` only and scored on every ``real`` sequence. With
    lengths, a sequence of length L has targets at steps ``1..L-1`` only, and the loss and the
    score average over real target steps, each counting once.

    Args:
        real: (N, T, F) real sequences with F >= 2 and values in [0, 1].
        generated: (M, T', F) generated sequences; T' = T unless lengths are given.
        hidden_size: GRU width; ``None`` gives TimeGAN's ``max(1, F // 2)``.
        iterations: Number of Adam steps (5,000 in TimeGAN).
        batch_size: Sequences per step (128 in TimeGAN).
        lr: Adam's learning rate.
        seed: Seeds the initial weights and the batches.
        device: Where the small GRU runs.
        progress: Show a tqdm bar.
        real_lengths: (N,) ints in [2, T], real steps per sequence; ``None``: all T.
        generated_lengths: (M,) ints in [2, T']; ``None``: all T'.

    Returns:
        The mean absolute error on the real target steps (lower is better).

    Raises:
        TypeError, ValueError: A bad argument; the message names it.
    """
    real, generated, real_lengths, generated_lengths = _checked_predictor_args(
        real, generated, real_lengths, generated_lengths)
    hidden_size, iterations, batch_size, lr, seed = _training_args(
        real.shape[2], hidden_size, iterations, batch_size, lr, seed)

    def l1(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mask) -> torch.Tensor:
        error = (model(x) - y).abs()  # (B, T-1)
        return error.mean() if mask is None else error[mask].mean()

    x_train, y_train, mask_train = _predictor_data(generated, generated_lengths, device)
    x_test, y_test, mask_test = _predictor_data(real, real_lengths, device)
    model = _train(
        lambda: GRUPredictor(real.shape[2] - 1, hidden_size),
        lambda m, i: l1(m, x_train[i], y_train[i], None if mask_train is None else mask_train[i]),
        len(x_train), iterations, batch_size, lr, seed, device, progress, "predictor",
    )
    with torch.no_grad():
        return l1(model, x_test, y_test, mask_test).item()


def _stacked_discriminators(x_train, y_train, lengths_train, x_test, y_test, lengths_test,
                            seeds, n_features, hidden_size, iterations, batch_size, lr, device,
                            progress) -> list[float]:
    """Train one discriminator per row of the stacked (R, N, ...) sets; their scores."""
    rows = torch.arange(len(seeds), device=device)[:, None]  # (R, 1): run r's data in row r

    def loss_of_batch(model: _StackedModels, i: torch.Tensor) -> torch.Tensor:
        lengths = None if lengths_train is None else lengths_train[rows, i]  # (R, B)
        losses = nn.functional.binary_cross_entropy_with_logits(
            model.logits(x_train[rows, i], lengths), y_train[rows, i], reduction="none")
        return losses.mean(dim=1).sum()

    model = _train_runs(lambda: GRUClassifier(n_features, hidden_size), loss_of_batch,
                        x_train.shape[1], iterations, batch_size, lr, seeds, device, progress,
                        "discriminators")  # fmt: skip
    with torch.no_grad():
        predicted_real = model.logits(x_test, lengths_test) > 0  # (R, N_test)
    accuracy = _balanced_accuracy(predicted_real, y_test)  # (R,)
    return [abs(a - 0.5) for a in accuracy.tolist()]


def _predictor_l1(model: _StackedModels, x, y, mask) -> torch.Tensor:
    """(R,): each stacked predictor's mean absolute error over the real targets."""
    error = (model.predictions(x) - y).abs()  # (R, B, T-1)
    if mask is None:
        return error.mean(dim=(1, 2))
    return torch.where(mask, error, 0.0).sum(dim=(1, 2)) / mask.sum(dim=(1, 2))


def _stacked_predictors(x_train, y_train, mask_train, test, seeds, n_inputs, hidden_size,
                        iterations, batch_size, lr, device, progress) -> list[float]:
    """Train one predictor per row of the stacked (R, M, ...) sets; their errors on test."""
    rows = torch.arange(len(seeds), device=device)[:, None]  # (R, 1): run r's data in row r

    def loss_of_batch(model: _StackedModels, i: torch.Tensor) -> torch.Tensor:
        mask = None if mask_train is None else mask_train[rows, i]
        return _predictor_l1(model, x_train[rows, i], y_train[rows, i], mask).sum()

    model = _train_runs(lambda: GRUPredictor(n_inputs, hidden_size), loss_of_batch,
                        x_train.shape[1], iterations, batch_size, lr, seeds, device, progress,
                        "predictors")  # fmt: skip
    x_test, y_test, mask_test = test
    every_run = (len(seeds), *x_test.shape)
    with torch.no_grad():
        return _predictor_l1(model, x_test.expand(every_run), y_test.expand(every_run[:-1]),
                             None if mask_test is None else mask_test.expand(every_run[:-1])
                             ).tolist()  # fmt: skip


def discriminative_scores(
    real, generated, seeds=range(5), hidden_size: int | None = None, iterations: int = 2000,
    batch_size: int = 128, train_fraction: float = 0.8, lr: float = 1e-3,
    device: torch.device | str = "cpu", progress: bool = False, *,
    real_lengths: Lengths = None, generated_lengths: Lengths = None,
) -> list[float]:
    """:func:`discriminative_score` for each seed in ``seeds``, the runs trained together.

    Run r is :func:`discriminative_score` with ``seed=seeds[r]``: the same split, initial
    weights and batches, computed by a :class:`StackedGRU`. Its numbers agree with the
    one-run function's up to the rounding of a different order of operations (the tests
    check this); on the CPU, five runs cost about as much as two one at a time.

    Returns:
        One score per seed, in [0, 0.5].
    """
    return discriminative_score_sets(
        real, [generated], seeds, hidden_size, iterations, batch_size, train_fraction, lr,
        device, progress, real_lengths=real_lengths, generated_lengths=[generated_lengths])[0]


def discriminative_score_sets(
    real, generated_sets, seeds=range(5), hidden_size: int | None = None,
    iterations: int = 2000, batch_size: int = 128, train_fraction: float = 0.8,
    lr: float = 1e-3, device: torch.device | str = "cpu", progress: bool = False, *,
    real_lengths: Lengths = None, generated_lengths=None,
) -> list[list[float]]:
    """:func:`discriminative_scores` of several generated sets against the same real data.

    Every (set, seed) run is trained in one stack, which costs much less than the sets one
    after another (a table's rows are scored together). Runs whose pooled sets differ in size
    or length are stacked in separate groups.

    Args:
        real: (N, T, F) real sequences.
        generated_sets: A sequence of (M_i, T_i, F) generated sets.
        seeds: The seeds of each set's runs.
        generated_lengths: ``None``, or one entry (``None`` or (M_i,) ints) per set.
        Others: As in :func:`discriminative_score`.

    Returns:
        ``scores[i][r]``: set i's score with ``seeds[r]``.
    """
    generated_sets = list(generated_sets)
    lengths_of = _lengths_per_set(generated_sets, generated_lengths)
    seeds = _seed_list(seeds)
    checked = [_checked_discriminator_args(real, g, real_lengths, lengths, train_fraction)
               for g, lengths in zip(generated_sets, lengths_of, strict=True)]  # fmt: skip
    train_fraction = checked[0][4]
    hidden_size, iterations, batch_size, lr, _ = _training_args(
        checked[0][0].shape[2], hidden_size, iterations, batch_size, lr, 0)
    runs = [(i, seed) for i in range(len(checked)) for seed in seeds]
    data = [_discriminator_data(checked[i][0], checked[i][1], checked[i][2], checked[i][3],
                                train_fraction, seed, device) for i, seed in runs]  # fmt: skip
    groups: dict[tuple, list[int]] = {}  # runs whose tensors stack
    for k, (x_train, _, lengths, x_test, _, _) in enumerate(data):
        groups.setdefault((x_train.shape, x_test.shape, lengths is None), []).append(k)
    scores = [[0.0] * len(seeds) for _ in checked]
    for members in groups.values():
        stacked = (None if part[0] is None else torch.stack(part).to(device)
                   for part in zip(*(data[k] for k in members), strict=True))  # fmt: skip
        model_seeds = [runs[k][1] for k in members]
        group_scores = _stacked_discriminators(
            *stacked, model_seeds, checked[0][0].shape[2], hidden_size, iterations, batch_size, lr,
            device, progress)
        for k, score in zip(members, group_scores, strict=True):
            i, seed = runs[k]
            scores[i][seeds.index(seed)] = score
    return scores


def predictive_scores(
    real, generated, seeds=range(5), hidden_size: int | None = None, iterations: int = 5000,
    batch_size: int = 128, lr: float = 1e-3, device: torch.device | str = "cpu",
    progress: bool = False, *, real_lengths: Lengths = None, generated_lengths: Lengths = None,
) -> list[float]:
    """:func:`predictive_score` for each seed in ``seeds``, the runs trained together.

    Run r is :func:`predictive_score` with ``seed=seeds[r]`` (its initial weights and batches),
    computed by a :class:`StackedGRU`; the numbers agree up to rounding.

    Returns:
        One mean absolute error per seed.
    """
    return predictive_score_sets(
        real, [generated], seeds, hidden_size, iterations, batch_size, lr, device, progress,
        real_lengths=real_lengths, generated_lengths=[generated_lengths])[0]


def predictive_score_sets(
    real, generated_sets, seeds=range(5), hidden_size: int | None = None,
    iterations: int = 5000, batch_size: int = 128, lr: float = 1e-3,
    device: torch.device | str = "cpu", progress: bool = False, *,
    real_lengths: Lengths = None, generated_lengths=None,
) -> list[list[float]]:
    """:func:`predictive_scores` of several generated sets, every (set, seed) run in one stack.

    Args:
        real: (N, T, F) real sequences with F >= 2 and values in [0, 1].
        generated_sets: A sequence of (M_i, T_i, F) generated sets.
        seeds: The seeds of each set's runs.
        generated_lengths: ``None``, or one entry (``None`` or (M_i,) ints) per set.
        Others: As in :func:`predictive_score`.

    Returns:
        ``scores[i][r]``: set i's mean absolute error with ``seeds[r]``.
    """
    generated_sets = list(generated_sets)
    lengths_of = _lengths_per_set(generated_sets, generated_lengths)
    seeds = _seed_list(seeds)
    checked = [_checked_predictor_args(real, g, real_lengths, lengths)
               for g, lengths in zip(generated_sets, lengths_of, strict=True)]  # fmt: skip
    real, real_lengths = checked[0][0], checked[0][2]
    hidden_size, iterations, batch_size, lr, _ = _training_args(
        real.shape[2], hidden_size, iterations, batch_size, lr, 0)
    x_test, y_test, mask_test = _predictor_data(real, real_lengths, device)
    runs = [(i, seed) for i in range(len(checked)) for seed in seeds]
    train_data = [_predictor_data(g, lengths, device) for _, g, _, lengths in checked]
    groups: dict[tuple, list[int]] = {}  # runs whose training sets stack
    for k, (i, _) in enumerate(runs):
        x_train, _, mask = train_data[i]
        groups.setdefault((x_train.shape, mask is None), []).append(k)

    scores = [[0.0] * len(seeds) for _ in checked]
    for members in groups.values():
        stacked = (None if part[0] is None else torch.stack(part)
                   for part in zip(*(train_data[runs[k][0]] for k in members), strict=True))
        group_errors = _stacked_predictors(
            *stacked, (x_test, y_test, mask_test), [runs[k][1] for k in members],
            real.shape[2] - 1, hidden_size, iterations, batch_size, lr, device, progress)
        for k, error in zip(members, group_errors, strict=True):
            i, seed = runs[k]
            scores[i][seeds.index(seed)] = error
    return scores


def _lengths_per_set(generated_sets: list, generated_lengths) -> list:
    if not generated_sets:
        raise ValueError("generated_sets must hold at least one set, got none")
    if generated_lengths is None:
        return [None] * len(generated_sets)
    generated_lengths = list(generated_lengths)
    if len(generated_lengths) != len(generated_sets):
        raise ValueError(f"generated_lengths must hold one entry per set "
                         f"({len(generated_sets)}), got {len(generated_lengths)}")
    return generated_lengths
