import numpy as np
import pytest

from tvae_lib.sines import make_sines


def test_benchmark_shape_dtype_and_range():
    x = make_sines()
    assert x.shape == (10_000, 24, 5) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    # With f, phi in [0, 0.1] the argument stays in [0, 2.4], where sin >= 0: values in [0.5, 1].
    assert x.min() >= 0.5 and x.max() > 0.99


def test_each_channel_is_a_sine_with_small_frequency_and_phase():
    x = make_sines(n_sequences=50, seed=1).astype(np.float64)
    angle = np.arcsin(np.clip(2 * x[:, 0] - 1, -1, 1))  # (N, F): sin^-1 at t = 0 gives phi
    assert (angle >= -1e-6).all() and (angle <= 0.1 + 1e-6).all()
    # Recover f from the first two steps (before any wave passes its peak) and rebuild the rest.
    frequency = np.arcsin(np.clip(2 * x[:, 1] - 1, -1, 1)) - angle  # (N, F)
    assert (frequency >= -1e-5).all() and (frequency <= 0.1 + 1e-5).all()
    steps = np.arange(24)[None, :, None]
    rebuilt = (np.sin(frequency[:, None] * steps + angle[:, None]) + 1) / 2
    np.testing.assert_allclose(rebuilt, x, atol=2e-4)


def test_deterministic_per_seed():
    np.testing.assert_array_equal(make_sines(20, seed=3), make_sines(20, seed=3))
    assert not np.array_equal(make_sines(20, seed=3), make_sines(20, seed=4))


def test_literal_first_values():
    x = make_sines(n_sequences=1, seq_len=3, n_channels=1, seed=0)
    rng = np.random.default_rng(0)
    f, phi = rng.uniform(0, 0.1), rng.uniform(0, 0.1)
    expected = (np.sin(f * np.arange(3) + phi) + 1) / 2
    np.testing.assert_allclose(x[0, :, 0], expected, rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_sequences": 0}, "n_sequences must be a positive int"),
    ({"seq_len": 2.5}, "seq_len must be an int"),
    ({"max_frequency": -1.0}, "max_frequency must be a non-negative"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make_sines(**kwargs)
