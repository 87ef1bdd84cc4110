"""The Sines benchmark of the TimeGAN paper (Yoon et al., 2019), generated deterministically.

Each sequence has ``n_channels`` independent channels; channel ``k`` is ``sin(f_k t + phi_k)``
for the steps ``t = 0, 1, ..., T - 1``, with its frequency ``f_k`` and phase ``phi_k`` drawn
uniformly from ``[0, 0.1]``. Like the TimeGAN reference code, the values are then mapped from
``[-1, 1]`` to ``[0, 1]`` by ``(sin + 1) / 2`` (with these small frequencies they actually
lie in about ``[0.5, 1]``), so our scores are on the same scale as the published ones.

Shapes: N sequences, T steps, F channels.
"""

from __future__ import annotations

import numpy as np

from tvae_lib.checks import positive_int

__all__ = ["make_sines"]


def make_sines(
    n_sequences: int = 10_000,
    seq_len: int = 24,
    n_channels: int = 5,
    max_frequency: float = 0.1,
    max_phase: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """Draw the Sines data set: ``(sin(f t + phi) + 1) / 2`` per channel.

    Args:
        n_sequences: Number of sequences N (10,000 in the benchmark).
        seq_len: Length T of each sequence (24 in the benchmark).
        n_channels: Number of channels F (5 in the benchmark).
        max_frequency: Frequencies are drawn uniformly from ``[0, max_frequency]``.
        max_phase: Phases are drawn uniformly from ``[0, max_phase]``.
        seed: Seed of the NumPy generator; the same seed always gives the same data.

    Returns:
        (N, T, F) float32 array with values in [0, 1].
    """
    for name, value in (("n_sequences", n_sequences), ("seq_len", seq_len),
                        ("n_channels", n_channels)):
        positive_int(name, value)
    for name, value in (("max_frequency", max_frequency), ("max_phase", max_phase)):
        if not value >= 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    rng = np.random.default_rng(seed)
    frequency = rng.uniform(0.0, max_frequency, size=(n_sequences, 1, n_channels))  # (N, 1, F)
    phase = rng.uniform(0.0, max_phase, size=(n_sequences, 1, n_channels))  # (N, 1, F)
    steps = np.arange(seq_len, dtype=np.float64)[None, :, None]  # (1, T, 1)
    waves = np.sin(frequency * steps + phase)  # (N, T, F)
    return ((waves + 1.0) / 2.0).astype(np.float32)
