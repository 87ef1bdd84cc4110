import numpy as np
import pytest
import torch

from tvae_lib import evaluation
from tvae_lib.masks import padding_mask
from tvae_lib.sequence_scores import per_sequence_mse, tvae_sequence_scores
from tvae_lib.tvae import TransformerVAE, TVAEConfig
from tvae_lib.vae import kl_divergence


@pytest.fixture
def model():
    torch.manual_seed(0)
    config = TVAEConfig(n_features=2, d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1,
                        n_decoder_layers=1, latent_dim=3, max_len=12)  # fmt: skip
    return TransformerVAE(config).train()  # the scores must switch to evaluation mode


def test_per_sequence_mse_counts_real_steps_only():
    target = torch.zeros(2, 4, 1)
    prediction = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 2.0, 2.0]])[..., None]
    mask = padding_mask(torch.tensor([2, 4]), 4)
    np.testing.assert_allclose(per_sequence_mse(prediction, target, mask), [1.0, 4.0])
    np.testing.assert_allclose(per_sequence_mse(prediction, target), [5.0, 4.0])
    target[0, 2:] = float("nan")  # padding: never read
    np.testing.assert_allclose(per_sequence_mse(prediction, target, mask), [1.0, 4.0])
    with pytest.raises(ValueError, match="share a shape"):
        per_sequence_mse(prediction[:1], target)
    with pytest.raises(ValueError, match="at least one real step"):
        per_sequence_mse(prediction, target, torch.zeros(2, 4, dtype=torch.bool))


def test_tvae_scores_agree_with_the_library_errors(model):
    x = torch.randn(5, 10, 2)
    scores = tvae_sequence_scores(model, x, n_samples=3)
    assert model.training  # mode restored
    assert set(scores) == {"teacher_forced", "free_running", "neg_elbo", "kl"}
    assert all(v.shape == (5,) for v in scores.values())
    # every sequence has T F values, so the mean of the per-sequence errors is the overall one
    assert scores["free_running"].mean() == pytest.approx(
        evaluation.reconstruction_mse(model, x), rel=1e-5)
    assert scores["teacher_forced"].mean() == pytest.approx(
        evaluation.reconstruction_mse(model, x, free_running=False), rel=1e-5)
    mu, logvar = evaluation.encode_means(model, x)
    np.testing.assert_allclose(scores["kl"], kl_divergence(mu, logvar).numpy(), rtol=1e-5)
    # the ELBO term: at least the KL per value, and reproducible from its seed
    assert (scores["neg_elbo"] >= scores["kl"] / 20).all()
    again = tvae_sequence_scores(model, x, n_samples=3, batch_size=2)
    np.testing.assert_allclose(again["neg_elbo"], scores["neg_elbo"], rtol=1e-5)


def test_tvae_scores_never_read_padding(model):
    x = torch.randn(3, 10, 2)
    mask = padding_mask(torch.tensor([10, 6, 3]), 10)
    clean = tvae_sequence_scores(model, x, mask)
    poisoned = x.masked_fill(~mask[..., None], float("nan"))
    dirty = tvae_sequence_scores(model, poisoned, mask)
    for key in clean:
        np.testing.assert_allclose(dirty[key], clean[key], rtol=1e-6)
        assert np.isfinite(dirty[key]).all()
    with pytest.raises(ValueError, match="n_samples"):
        tvae_sequence_scores(model, x, n_samples=0)
