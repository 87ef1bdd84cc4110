"""Chapter 4's causal next-step forecaster, as an anomaly detector that uses no latent code.

A decoder-only Transformer (GPT-style, the causal model chapter 4 builds): a linear
embedding, sinusoidal positions, a stack of encoder layers under the causal mask and a
linear read-out predict, at every step t, the next step t + 1. Trained on normal sequences,
its one-step error scores how predictable a sequence is from its own past. That is the
baseline for the Transformer-VAE's anomaly scores: a TVAE decoder that is teacher-forced and
ignores its code z is exactly such a forecaster, so a score that uses z has to beat this one
to show that the code helps.

Shapes: N sequences, B a batch, T steps, F channels, D the model width.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from tvae_lib import checks
from tvae_lib.masks import causal_mask
from tvae_lib.positional import SinusoidalPositionalEncoding
from tvae_lib.sequence_scores import per_sequence_mse
from tvae_lib.training import fit
from tvae_lib.transformer import Encoder, EncoderLayer
from tvae_lib.utils import seed_everything

__all__ = ["NextStepForecaster", "train_forecaster", "next_step_scores"]


class NextStepForecaster(nn.Module):
    """A causal Transformer that predicts step t + 1 at every step t.

    Args:
        n_features: Channels F.
        d_model: Width D.
        n_heads: Attention heads (D must be divisible by it).
        n_layers: Encoder layers, each under the causal mask.
        max_len: Longest sequence the positional encoding covers.

    Shape:
        - x: (B, T, F) with T <= max_len
        - output: (B, T, F), at t the prediction of step t + 1 from steps 0..t
    """

    def __init__(self, n_features: int, d_model: int = 32, n_heads: int = 1, n_layers: int = 1,
                 max_len: int = 128) -> None:  # fmt: skip
        super().__init__()
        for name, value in (("n_features", n_features), ("d_model", d_model),
                            ("n_heads", n_heads), ("n_layers", n_layers),
                            ("max_len", max_len)):  # fmt: skip
            checks.positive_int(name, value)
        self.n_features = n_features
        self.embed = nn.Linear(n_features, d_model)
        self.position = SinusoidalPositionalEncoding(d_model, max_len=max_len)
        self.encoder = Encoder(EncoderLayer(d_model, n_heads, d_ff=2 * d_model), n_layers)
        self.head = nn.Linear(d_model, n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[2] != self.n_features:
            raise ValueError(f"x must have shape (B, T, F={self.n_features}), got "
                             f"{tuple(x.shape)}")  # fmt: skip
        mask = causal_mask(x.shape[1], device=x.device)  # (T, T): step t sees 0..t
        return self.head(self.encoder(self.position(self.embed(x)), attn_mask=mask))


def _sequences(name: str, x) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 3 or x.shape[1] < 2 or not x.is_floating_point():
        raise ValueError(f"{name} must be float sequences of shape (N, T, F) with T >= 2, got "
                         f"{x.dtype} {tuple(x.shape)}")  # fmt: skip
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return x.float()


def train_forecaster(x_train, *, seed: int = 0, epochs: int = 12, lr: float = 0.01,
                     batch_size: int = 32, device: torch.device | str = "cpu",
                     **sizes) -> NextStepForecaster:  # fmt: skip
    """Train a :class:`NextStepForecaster` on fixed-length sequences with teacher forcing.

    The schedule is chapter 4's: Adam at ``lr``, ``epochs`` passes in shuffled batches, the
    mean squared error of every step's prediction of the next one.

    Args:
        x_train: (N, T, F) training sequences (array or tensor), T >= 2.
        seed: Seed of the weights and the batch order.
        epochs, lr, batch_size: The schedule.
        device: Where to train.
        **sizes: ``d_model``, ``n_heads``, ``n_layers`` of the model (``max_len`` is T).

    Returns:
        The model, in evaluation mode.
    """
    x_train = _sequences("x_train", x_train)
    generator = seed_everything(checks.non_negative_int("seed", seed))
    model = NextStepForecaster(x_train.shape[2], max_len=x_train.shape[1], **sizes).to(device)

    def step(module: NextStepForecaster, batch) -> dict[str, torch.Tensor]:
        (x,) = batch
        return {"loss": F.mse_loss(module(x[:, :-1]), x[:, 1:])}

    loader = DataLoader(TensorDataset(x_train), batch_size=checks.positive_int(
        "batch_size", batch_size), shuffle=True, generator=generator)  # fmt: skip
    fit(model, loader, step, epochs=epochs, progress=False, device=device,
        optimizer=torch.optim.Adam(model.parameters(), lr=checks.positive_float("lr", lr)))
    return model.eval()


@torch.no_grad()
def next_step_scores(model: NextStepForecaster, x, mask=None) -> np.ndarray:
    """Each sequence's one-step forecast error, per real value of the steps it predicts.

    Args:
        model: A trained forecaster.
        x: (N, T, F) sequences (array or tensor), T >= 2.
        mask: Optional (N, T) bool, ``True`` at real steps; only real steps 1..L-1 count.

    Returns:
        (N,) float64 mean squared errors of the predictions of steps 1..T-1.
    """
    x = _sequences("x", x)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        prediction = model(x[:, :-1].to(device)).cpu()  # (N, T-1, F): of steps 1..T-1
    finally:
        model.train(was_training)
    targets_real = None if mask is None else torch.as_tensor(mask)[:, 1:]
    return per_sequence_mse(prediction, x[:, 1:], targets_real)
