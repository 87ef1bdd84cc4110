"""Seeding, device choice and small notebook helpers shared by every chapter."""

from __future__ import annotations

import inspect
import os
import random

import numpy as np
import torch
from torch import nn

from tvae_lib.checks import non_negative_int

__all__ = ["progress_enabled", "seed_everything", "get_device", "count_parameters", "show_source"]


def progress_enabled() -> bool:
    """Whether training shows live progress bars: yes, unless ``TVAE_PROGRESS=0``.

    ``make notebooks`` and ``make nbval`` set ``TVAE_PROGRESS=0``, so the outputs stored in the
    notebooks, and the book's pages, carry no progress bars (which are stderr noise and hold
    timings); a notebook run by hand still shows them.
    """
    return os.environ.get("TVAE_PROGRESS", "1") != "0"


def seed_everything(seed: int = 0, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch, and ask PyTorch for deterministic kernels.

    Args:
        seed: The seed for every random number generator.
        deterministic: Also call ``torch.use_deterministic_algorithms(True, warn_only=True)`` and
            set the cuBLAS workspace variable CUDA needs for reproducible matrix products.

    Returns:
        A ``torch.Generator`` seeded with ``seed``, handy for a ``DataLoader``'s shuffling.
    """
    non_negative_int("seed", seed)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (seeds the legacy global generator readers may use)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def get_device(prefer: str | None = None) -> torch.device:
    """Pick the fastest available device: CUDA, then Apple's MPS, then the CPU.

    Args:
        prefer: Force a device (``"cpu"``, ``"cuda"``, ``"mps"``); ``None`` chooses. The
            environment variable ``TVAE_DEVICE`` overrides the automatic choice too.

    Returns:
        The chosen ``torch.device``.
    """
    choice = prefer or os.environ.get("TVAE_DEVICE")
    if choice is not None:
        if choice not in {"cpu", "cuda", "mps"} and not choice.startswith("cuda:"):
            raise ValueError(f"prefer must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {choice!r}")
        if choice.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {choice!r} was asked for but CUDA is not available")
        if choice == "mps" and not torch.backends.mps.is_available():
            raise ValueError("device 'mps' was asked for but MPS is not available")
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def show_source(obj: object):
    """Display the source of a library function or class in a notebook, highlighted.

    The book shows library code through this helper, so the code on the page is always the
    code that runs.

    Args:
        obj: A function, class or method.

    Returns:
        An ``IPython.display.Markdown`` object holding a fenced Python code block.
    """
    from IPython.display import Markdown

    try:
        source = inspect.getsource(obj)
    except TypeError as err:
        raise TypeError(f"show_source needs a function, class or method, got {type(obj)}") from err
    return Markdown(f"```python\n{source.rstrip()}\n```")
