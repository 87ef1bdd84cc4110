"""The learned noise of a Transformer-VAE: its mean and variance fitted per step and channel,
sampled by generate."""

import math
from dataclasses import asdict

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from tvae_lib import checkpoints
from tvae_lib.masks import padding_mask
from tvae_lib.recipes import Recipe, train
from tvae_lib.sequence_scores import tvae_sequence_scores
from tvae_lib.tvae import TransformerVAE, TVAEConfig

SIZES = dict(n_features=2, d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1,
             n_decoder_layers=1, latent_dim=3, max_len=12)  # fmt: skip


def _model(**changes) -> TransformerVAE:
    torch.manual_seed(0)
    return TransformerVAE(TVAEConfig(**{**SIZES, "learned_noise": True, **changes})).eval()


def test_the_noise_changes_no_weight_and_must_be_fitted_before_use():
    plain = _model(learned_noise=False)
    noisy = _model()
    state = noisy.state_dict()
    assert set(state) - set(plain.state_dict()) == {"noise_var", "noise_mean"}
    for name, value in plain.state_dict().items():
        assert torch.equal(state[name], value)  # building the noise draws no random number
    with pytest.raises(ValueError, match="not fitted yet"):
        noisy.generate(2, 5)
    assert noisy.generate(2, 5, noise=False).shape == (2, 5, 2)
    with pytest.raises(ValueError, match="no learned noise"):
        plain.generate(2, 5, noise=True)
    with pytest.raises(ValueError, match="no learned noise"):
        plain.fit_noise(torch.randn(3, 5, 2))
    with pytest.raises(TypeError, match="noise must be"):
        noisy.generate(2, 5, noise="yes")
    with pytest.raises(TypeError, match="learned_noise must be"):
        TVAEConfig(learned_noise=1)


def test_fit_is_a_robust_difference_estimate_over_real_pairs_only():
    model = _model()
    x = torch.randn(40, 10, 2)
    lengths = torch.arange(40) % 8 + 3  # 3 .. 10 real steps
    mask = padding_mask(lengths, 10)
    residual = (model.reconstruct(x, mask) - x.masked_fill(~mask[..., None], 0.0)).double()
    change = residual.diff(dim=1)  # (N, 9, F)
    pairs = mask[:, 1:] & mask[:, :-1]  # (N, 9)
    squares = change.pow(2).masked_fill(~pairs[..., None], float("nan"))
    chi2_median = 0.454936423119572
    per_pair = squares.nanmedian(dim=0).values / (2 * chi2_median)  # (9, F)
    poisoned = x.masked_fill(~mask[..., None], float("nan"))  # padding is never read
    fitted = model.fit_noise(poisoned, mask, batch_size=7, min_count=1)
    torch.testing.assert_close(fitted[1:10].double(), per_pair, rtol=1e-5, atol=0)
    torch.testing.assert_close(fitted[0], fitted[1])  # step 0 shares step 1's
    pooled = squares.transpose(0, 2).reshape(2, -1).nanmedian(dim=1).values / (2 * chi2_median)
    torch.testing.assert_close(fitted[10:].double(), pooled.expand(2, 2), rtol=1e-5, atol=0)
    rare = model.fit_noise(x, mask, min_count=30)  # steps 8, 9 have fewer than 30 pairs
    counts = pairs.sum(dim=0)
    for t in range(9):
        expected = per_pair[t] if counts[t] >= 30 else pooled
        torch.testing.assert_close(rare[t + 1].double(), expected, rtol=1e-5, atol=0)
    torch.testing.assert_close(model.noise_variance(10), rare[:10])
    # the mean: the median residual (x minus the reconstruction) over the real steps
    residuals = (-residual).masked_fill(~mask[..., None], float("nan"))  # (N, 10, F)
    per_step = residuals.nanmedian(dim=0).values  # (10, F)
    everywhere = residuals.transpose(0, 2).reshape(2, -1).nanmedian(dim=1).values  # (F,)
    real = mask.sum(dim=0)  # (10,) sequences with a real step there
    for t in range(12):
        expected = per_step[t] if t < 10 and real[t] >= 30 else everywhere
        torch.testing.assert_close(model.noise_mean[t].double(), expected, rtol=1e-5, atol=1e-7)


def test_the_fit_finds_white_noise_under_a_smooth_error_and_ignores_jumps():
    torch.manual_seed(0)
    model = _model(n_features=1, max_len=40)
    t = torch.linspace(0, 1, 40)
    with torch.no_grad():
        mean = model.generate(300, 40, noise=False)  # what the decoder would rebuild...
    x = mean + 0.3 * torch.sin(3 * t + torch.rand(300, 1))[..., None]  # ...a smooth error
    x = x + 0.05 * torch.randn(300, 40, 1)  # white noise of sd 0.05
    x[::10, 20] += 5.0  # a dropout-like jump in one cycle of ten
    model.reconstruct = lambda x_in, mask=None: mean  # the decoder's mean, exactly
    fitted = model.fit_noise(x, batch_size=300)
    np.testing.assert_allclose(fitted.sqrt().median().item(), 0.05, rtol=0.1)
    assert fitted.sqrt().max() < 0.08  # neither the smooth error nor the jumps inflate it


def test_the_fit_finds_the_offset_the_decoder_misses_by_and_ignores_jumps():
    torch.manual_seed(0)
    model = _model(n_features=1, max_len=40)
    with torch.no_grad():
        mean = model.generate(400, 40, noise=False)  # what the decoder would rebuild
    offset = torch.zeros(40, 1)
    offset[25:] = 0.1  # the decoder's mean is 0.1 too low from step 25 on
    x = mean + offset + 0.05 * torch.randn(400, 40, 1)
    x[::5, 30] = -5.0  # a reading that drops out, in one cycle of five
    model.reconstruct = lambda x_in, mask=None: mean  # the decoder's mean, exactly
    model.fit_noise(x, batch_size=400)
    torch.testing.assert_close(model.noise_mean, offset, rtol=0, atol=0.015)
    generated = model.generate(400, 40, z=torch.zeros(400, 3), noise=True,
                               generator=torch.Generator().manual_seed(1))  # fmt: skip
    raw = model.generate(400, 40, z=torch.zeros(400, 3), noise=False)
    torch.testing.assert_close((generated - raw).mean(dim=0), offset, rtol=0, atol=0.02)


def test_generated_noise_has_the_fitted_spread():
    model = _model()
    variance = torch.linspace(0.01, 1.0, 24).reshape(12, 2)
    offset = torch.linspace(-0.5, 0.5, 24).reshape(12, 2)
    model.noise_var.copy_(variance)
    model.noise_mean.copy_(offset)
    mean = model.generate(4000, 6, generator=torch.Generator().manual_seed(1), noise=False)
    noisy = model.generate(4000, 6, generator=torch.Generator().manual_seed(1))
    standard = (noisy - mean - offset[:6]) / variance[:6].sqrt()  # the same codes, plus noise
    assert abs(float(standard.mean())) < 0.01
    np.testing.assert_allclose(standard.std(dim=0).numpy(), 1.0, atol=0.05)  # per step, channel
    lengths = torch.tensor([6, 2])
    padded = model.generate(2, lengths=lengths, generator=torch.Generator().manual_seed(0))
    assert (padded[1, 2:] == 0).all() and (padded[1, :2] != 0).all()


def test_training_fits_the_noise_and_a_checkpoint_keeps_it(tmp_path):
    model = _model()
    x = torch.randn(16, 8, 2)
    loader = DataLoader(TensorDataset(x), batch_size=8)
    train(model, Recipe(epochs=1, free_running_epochs=0, batch_size=8), loader)
    fitted, offset = model.noise_variance().clone(), model.noise_mean.clone()
    torch.testing.assert_close(fitted, model.fit_noise(x))  # the same fit
    torch.testing.assert_close(offset, model.noise_mean)
    assert torch.isfinite(fitted).all() and (fitted > 0).all() and torch.isfinite(offset).all()
    path = checkpoints.save_model(model, tmp_path / "m.pt")
    loaded, _ = checkpoints.load_model(path)
    torch.testing.assert_close(loaded.noise_variance(), fitted)
    torch.testing.assert_close(loaded.noise_mean, offset)


def test_a_checkpoint_saved_before_the_noise_had_a_mean_loads_and_asks_for_a_fit(tmp_path):
    model = _model()
    x = torch.randn(16, 8, 2)
    variance = model.fit_noise(x)
    state = {k: v for k, v in model.state_dict().items() if k != "noise_mean"}
    path = checkpoints.save_checkpoint(tmp_path / "old.pt", config=asdict(model.config),
                                       state_dict=state)  # fmt: skip
    loaded, _ = checkpoints.load_model(path)
    torch.testing.assert_close(loaded.noise_var, variance)  # the variance is kept
    assert torch.isnan(loaded.noise_mean).all()
    with pytest.raises(ValueError, match="not fitted yet: call fit_noise"):
        loaded.generate(2, 5)
    loaded.fit_noise(x)
    torch.testing.assert_close(loaded.noise_mean, model.noise_mean)
    assert loaded.generate(2, 5).shape == (2, 5, 2)


def test_the_noise_likelihood_score():
    model = _model()
    model.noise_var.copy_(torch.full((12, 2), 0.25))
    model.noise_mean.copy_(torch.full((12, 2), 0.1))
    x = torch.randn(3, 10, 2)
    mask = padding_mask(torch.tensor([10, 6, 3]), 10)
    scores = tvae_sequence_scores(model, x, mask)
    target = x.masked_fill(~mask[..., None], 0.0)
    residual = (target - model.reconstruct(x, mask) - 0.1).masked_fill(~mask[..., None], 0.0)
    values = mask.sum(dim=1) * 2
    expected = 0.5 * (math.log(2 * math.pi * 0.25) * values
                      + residual.pow(2).sum(dim=(1, 2)) / 0.25) / values  # fmt: skip
    np.testing.assert_allclose(scores["noise_nll"], expected.numpy(), rtol=1e-5)
    poisoned = x.masked_fill(~mask[..., None], float("nan"))
    np.testing.assert_allclose(tvae_sequence_scores(model, poisoned, mask)["noise_nll"],
                               scores["noise_nll"], rtol=1e-6)  # fmt: skip
    assert "noise_nll" not in tvae_sequence_scores(_model(learned_noise=False), x, mask)


def test_generate_decodes_given_codes():
    model = _model(learned_noise=False)
    codes = torch.randn(3, 3)
    torch.testing.assert_close(model.generate(3, 5, z=codes), model.free_run(codes, 5))
    with pytest.raises(ValueError, match="n=2 codes"):
        model.generate(2, 5, z=codes)
    with pytest.raises(ValueError, match="z must have shape"):
        model.generate(3, 5, z=torch.randn(3, 2))
