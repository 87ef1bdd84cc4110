import numpy as np
import pytest
import torch

from tvae_lib.forecaster import NextStepForecaster, next_step_scores, train_forecaster


def test_forecaster_is_causal():
    torch.manual_seed(0)
    model = NextStepForecaster(3, d_model=16, n_heads=2, n_layers=2, max_len=12).eval()
    x = torch.randn(2, 10, 3)
    later_changed = x.clone()
    later_changed[:, 6:] = torch.randn(2, 4, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:, :6], model(later_changed)[:, :6])
        assert not torch.allclose(model(x)[:, 6:], model(later_changed)[:, 6:])


def test_training_makes_a_forecaster_of_the_data():
    # fast waves, so that "the next step is this one" (persistence) is a poor forecast
    phase = np.random.default_rng(0).uniform(0, 2 * np.pi, (256, 1, 2))
    x = np.sin(1.5 * np.arange(16)[None, :, None] + phase).astype(np.float32)
    untrained = NextStepForecaster(2, max_len=16).eval()
    trained = train_forecaster(x, epochs=10, lr=0.01)
    assert not trained.training
    before, after = next_step_scores(untrained, x), next_step_scores(trained, x)
    persistence = ((x[:, 1:] - x[:, :-1]) ** 2).mean()  # "the next step is this one"
    assert after.shape == (256,) and after.mean() < 0.1 * before.mean()
    assert after.mean() < persistence
    again = train_forecaster(x, epochs=10, lr=0.01)  # seeded: the same weights
    np.testing.assert_array_equal(next_step_scores(again, x), after)


@pytest.mark.parametrize("with_mask", [False, True])
def test_scores_are_the_error_of_the_real_steps_predicted(with_mask):
    torch.manual_seed(0)
    model = NextStepForecaster(3, d_model=8, max_len=9).eval()
    x = torch.randn(4, 9, 3)
    lengths = torch.tensor([9, 5, 2, 7]) if with_mask else torch.full((4,), 9)
    mask = torch.arange(9)[None, :] < lengths[:, None] if with_mask else None
    with torch.no_grad():
        prediction = model(x[:, :-1])  # (N, 8, F): of steps 1..8
    expected = [((prediction[i, : n - 1] - x[i, 1:n]) ** 2).mean().item()
                for i, n in enumerate(lengths)]  # fmt: skip
    np.testing.assert_allclose(next_step_scores(model, x, mask), expected, rtol=1e-6)


@pytest.mark.parametrize("call, error, match", [
    (lambda m: m(torch.randn(2, 5, 4)), ValueError, r"x must have shape \(B, T, F=3\)"),
    (lambda m: next_step_scores(m, np.zeros((2, 1, 3), np.float32)), ValueError, "T >= 2"),
    (lambda m: next_step_scores(m, np.full((2, 4, 3), np.nan, np.float32)), ValueError,
     "x contains NaN"),
    (lambda m: train_forecaster(np.zeros((4, 5, 3), np.int64)), ValueError,
     "x_train must be float sequences"),
    (lambda m: train_forecaster(np.zeros((4, 5, 3), np.float32), lr=0), ValueError, "lr"),
    (lambda m: NextStepForecaster(0), ValueError, "n_features"),
])  # fmt: skip
def test_bad_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call(NextStepForecaster(3, max_len=8))
