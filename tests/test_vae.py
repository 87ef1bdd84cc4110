import pytest
import torch
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from tvae_lib import vae


def test_reparameterize_matches_mean_and_std():
    mu = torch.tensor([[1.0, -2.0]]).expand(20000, 2)
    logvar = torch.tensor([[0.0, 2 * torch.log(torch.tensor(3.0))]]).expand(20000, 2)
    z = vae.reparameterize(mu, logvar)
    torch.testing.assert_close(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.05, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([1.0, 3.0]), atol=0.05, rtol=0)


def test_reparameterize_lets_gradients_flow_to_mu_and_logvar():
    mu = torch.zeros(4, 3, requires_grad=True)
    logvar = torch.zeros(4, 3, requires_grad=True)
    generator = torch.Generator().manual_seed(1)
    z = vae.reparameterize(mu, logvar, generator=generator)
    z.sum().backward()
    eps = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(mu.grad, torch.ones(4, 3))  # dz/dmu = 1
    torch.testing.assert_close(logvar.grad, 0.5 * eps)  # dz/dlogvar = 0.5 sigma eps


def test_reparameterize_with_generator_is_reproducible():
    mu, logvar = torch.zeros(2, 5), torch.zeros(2, 5)
    a = vae.reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    b = vae.reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(6, 4), torch.randn(6, 4)
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros(6, 4), torch.ones(6, 4))
    torch.testing.assert_close(vae.kl_per_dimension(mu, logvar), torch_kl(q, p))
    torch.testing.assert_close(vae.kl_divergence(mu, logvar), torch_kl(q, p).sum(-1))


def test_kl_literal_values():
    # KL(N(0,1)||N(0,1)) = 0; KL(N(1,1)||N(0,1)) = 0.5; KL(N(0,e)||N(0,1)) = 0.5 (e - 2)
    mu = torch.tensor([[0.0, 1.0, 0.0]])
    logvar = torch.tensor([[0.0, 0.0, 1.0]])
    expected = torch.tensor([[0.0, 0.5, 0.5 * (torch.e - 2)]])
    torch.testing.assert_close(vae.kl_per_dimension(mu, logvar), expected)
    assert vae.kl_divergence(mu, logvar).shape == (1,)


@pytest.mark.parametrize(
    ("mu", "logvar", "match"),
    [
        (torch.zeros(3), torch.zeros(3), r"\(B, Z\)"),
        (torch.zeros(2, 3), torch.zeros(2, 4), r"\(B, Z\)"),
    ],
)
def test_kl_rejects_bad_shapes(mu, logvar, match):
    with pytest.raises(ValueError, match=match):
        vae.kl_divergence(mu, logvar)


def test_kl_rejects_non_tensors():
    with pytest.raises(TypeError, match="tensors"):
        vae.kl_divergence([0.0], [0.0])


def test_free_bits_clamps_each_dimension_from_below():
    mu = torch.tensor([[0.0, 2.0], [0.0, 2.0]])  # KL per dim: 0 and 2
    logvar = torch.zeros(2, 2)
    assert vae.free_bits_kl(mu, logvar, 0.5).item() == pytest.approx(0.5 + 2.0)
    assert vae.free_bits_kl(mu, logvar, 0.0).item() == pytest.approx(2.0)
    mu.requires_grad_(True)
    vae.free_bits_kl(mu, logvar, 0.5).backward()
    assert mu.grad[:, 0].abs().sum() == 0  # no pressure on a dimension below the floor
    assert mu.grad[:, 1].abs().sum() > 0
    with pytest.raises(ValueError, match="free_bits"):
        vae.free_bits_kl(mu, logvar, -1.0)


def test_active_units_counts_dimensions_whose_mu_varies():
    mu = torch.stack([torch.linspace(-1, 1, 50), torch.full((50,), 0.3), 0.05 * torch.randn(50)], 1)
    assert vae.active_units(mu).tolist() == [True, False, False]
    assert vae.active_units(mu, threshold=1e-4).tolist() == [True, False, True]
    with pytest.raises(ValueError, match=r"\(N, Z\)"):
        vae.active_units(torch.zeros(1, 3))


def test_kl_schedules():
    linear = [vae.linear_kl_weight(e, warmup_epochs=4) for e in range(6)]
    assert linear == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert vae.linear_kl_weight(3, warmup_epochs=0, beta_max=0.5) == 0.5
    weights = [vae.cyclical_kl_weight(e, period=4, ramp_fraction=0.5) for e in range(8)]
    assert weights == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0]
    with pytest.raises(ValueError, match="warmup_epochs"):
        vae.linear_kl_weight(1, warmup_epochs=-1)
    with pytest.raises(ValueError, match="period"):
        vae.cyclical_kl_weight(1, period=0)


def test_mlp_vae_shapes_and_partial_batches():
    model = vae.MLPVAE(in_features=12, hidden=16, latent_dim=2)
    for batch in (1, 5):
        x_hat, mu, logvar = model(torch.randn(batch, 4, 3))
        assert x_hat.shape == (batch, 12) and mu.shape == logvar.shape == (batch, 2)
    model.eval()
    x = torch.randn(3, 12)
    torch.testing.assert_close(model(x)[0], model.decode(model.encode(x)[0]))  # eval uses mu


def test_mlp_vae_rejects_bad_input():
    model = vae.MLPVAE(in_features=12, latent_dim=2)
    with pytest.raises(ValueError, match="in_features=12"):
        model(torch.randn(2, 13))
    with pytest.raises(ValueError, match=r"Z=2"):
        model.decode(torch.randn(2, 3))
    with pytest.raises(ValueError, match="latent_dim"):
        vae.MLPVAE(in_features=12, latent_dim=0)


def test_vae_loss_terms():
    x = torch.zeros(2, 3, 2)
    x_hat = torch.ones(2, 3, 2)
    mu, logvar = torch.tensor([[1.0], [1.0]]), torch.zeros(2, 1)
    out = vae.vae_loss(x_hat, x, mu, logvar, beta=2.0)
    assert out["recon"].item() == pytest.approx(6.0)  # 6 values, error 1 each, summed
    assert out["kl"].item() == pytest.approx(0.5)
    assert out["loss"].item() == pytest.approx(6.0 + 2 * 0.5)
    mean = vae.vae_loss(x_hat, x, mu, logvar, recon="mse_mean")
    assert mean["recon"].item() == pytest.approx(1.0) and mean["mse"].item() == pytest.approx(1.0)
    bce = vae.vae_loss(torch.zeros(1, 4), torch.ones(1, 4), mu[:1], logvar[:1], recon="bce")
    assert bce["recon"].item() == pytest.approx(4 * torch.log(torch.tensor(2.0)).item())


def test_vae_loss_mask_ignores_padding():
    x = torch.zeros(2, 4, 3)
    x_hat = torch.zeros(2, 4, 3)
    x_hat[0, 3] = 100.0  # garbage on a padded step
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    mu, logvar = torch.zeros(2, 2), torch.zeros(2, 2)
    out = vae.vae_loss(x_hat, x, mu, logvar, mask=mask, recon="mse_mean")
    assert out["recon"].item() == 0.0 and out["mse"].item() == 0.0
    with pytest.raises(ValueError, match="mask"):
        vae.vae_loss(x_hat, x, mu, logvar, mask=mask[:, :3])
    with pytest.raises(ValueError, match="recon"):
        vae.vae_loss(x_hat, x, mu, logvar, recon="l1")
    with pytest.raises(ValueError, match="same shape"):
        vae.vae_loss(x_hat[:1], x, mu, logvar)


def test_mlp_vae_learns_to_reconstruct(one_thread):
    x = torch.randn(8, 1) * torch.linspace(0, 1, 10)  # rank-one data: a 1-D latent suffices
    model = vae.MLPVAE(in_features=10, hidden=32, latent_dim=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        x_hat, mu, logvar = model(x)
        out = vae.vae_loss(x_hat, x, mu, logvar, beta=0.01)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
    model.eval()
    x_hat, mu, logvar = model(x)
    assert vae.vae_loss(x_hat, x, mu, logvar)["mse"].item() < 0.02
