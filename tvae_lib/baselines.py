"""The baselines a Transformer-VAE's numbers stand beside, on the same latent size.

Two models that see a fixed-length sequence as one flat vector of T x F values: **PCA** with
Z components (the best linear code of that size) and the **MLP VAE** of chapter 6, trained
with the same objective as the TVAE (the summed squared error plus beta times the KL). Each
returns the same numbers as :func:`tvae_lib.evaluation.evaluate_tvae`: the reconstruction
error per value from the code, the active units, and the k-NN accuracy of the codes (fitted
on the training codes, scored on the others), so a table can set them side by side.

Shapes: N sequences, T steps, F channels, Z latent units.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA
from torch.utils.data import DataLoader, TensorDataset

from tvae_lib import checks
from tvae_lib.evaluation import knn_accuracy
from tvae_lib.training import fit
from tvae_lib.utils import seed_everything
from tvae_lib.vae import MLPVAE, active_units, vae_loss

__all__ = ["train_mlp_vae", "mlp_vae_metrics", "pca_metrics"]


def _sequences(name: str, x) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 3 or not x.dtype.is_floating_point or len(x) < 2:
        raise ValueError(f"{name} must be (N, T, F) floats with N >= 2 fixed-length sequences, "
                         f"got {x.dtype} {tuple(x.shape)}")  # fmt: skip
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite (these baselines take no padding)")
    return x


def train_mlp_vae(
    x_train, latent_dim: int, *, seed: int = 0, beta: float = 1.0, epochs: int = 100,
    hidden: int = 256, lr: float = 1e-3, batch_size: int = 64,
) -> MLPVAE:
    """Train chapter 6's MLP VAE on fixed-length sequences, seeded (on the CPU).

    Args:
        x_train: (N, T, F) training sequences.
        latent_dim: Z.
        seed: Seed of the weights and the batch order.
        beta: KL weight (1 is the ELBO with the summed squared error).
        epochs, hidden, lr, batch_size: The schedule and width (chapter 6's defaults).

    Returns:
        The model, in evaluation mode.
    """
    x_train = _sequences("x_train", x_train).float()
    checks.non_negative_float("beta", beta)
    generator = seed_everything(checks.non_negative_int("seed", seed))
    model = MLPVAE(in_features=x_train[0].numel(), hidden=hidden, latent_dim=latent_dim)

    def step(module: MLPVAE, batch) -> dict[str, torch.Tensor]:
        (x,) = batch
        x_hat, mu, logvar = module(x)
        return vae_loss(x_hat, x.reshape(len(x), -1), mu, logvar, beta=beta, recon="mse_sum")

    loader = DataLoader(TensorDataset(x_train), batch_size=batch_size, shuffle=True,
                        generator=generator)  # fmt: skip
    fit(model, loader, step, epochs=epochs, progress=False,
        optimizer=torch.optim.Adam(model.parameters(), lr=lr))  # fmt: skip
    return model.eval()


@torch.no_grad()
def mlp_vae_metrics(model: MLPVAE, x, labels=None, *, train=None, k: int = 5) -> dict:
    """An MLP VAE's error per value decoding ``mu``, its active units and the k-NN accuracy.

    Args:
        model: A trained :class:`~tvae_lib.vae.MLPVAE`.
        x: (N, T, F) sequences to judge it on.
        labels: Optional (N,) classes, for the k-NN accuracy.
        train: ``(x_train, labels_train)`` whose codes the k-NN classifier is fitted on
            (needed with ``labels``).
        k: Neighbours.

    Returns:
        ``{"mse", "active_units", "knn_accuracy"}`` (the last only with labels).
    """
    x = _sequences("x", x).float()
    model.eval()
    mu, _ = model.encode(x)
    result = {
        "mse": float((model.decode(mu).reshape(x.shape) - x).pow(2).mean()),
        "active_units": int(active_units(mu).sum()),
    }
    if labels is not None:
        if train is None:
            raise ValueError("labels need train=(x_train, labels_train) for the k-NN classifier")
        mu_train, _ = model.encode(_sequences("x_train", train[0]).float())
        result["knn_accuracy"] = knn_accuracy(mu_train, train[1], mu, labels, k=k)
    return result


def pca_metrics(x_train, x, n_components: int, labels=None, labels_train=None, k: int = 5) -> dict:
    """PCA with ``n_components`` fitted on ``x_train``: its error per value on ``x`` and the
    k-NN accuracy of its codes (fitted on the training codes; needs both label arrays).

    Returns:
        ``{"mse", "knn_accuracy"}`` (the latter only with labels).
    """
    x_train = _sequences("x_train", x_train).double().numpy().reshape(len(x_train), -1)
    flat = _sequences("x", x).double().numpy().reshape(len(x), -1)
    checks.int_in_range("n_components", n_components, 1, min(x_train.shape))
    pca = PCA(n_components, random_state=0).fit(x_train)
    codes = pca.transform(flat)
    result = {"mse": float(np.mean((pca.inverse_transform(codes) - flat) ** 2))}
    if labels is not None:
        if labels_train is None:
            raise ValueError("labels need labels_train for the k-NN classifier")
        result["knn_accuracy"] = knn_accuracy(pca.transform(x_train), labels_train, codes,
                                              labels, k=k)  # fmt: skip
    return result
