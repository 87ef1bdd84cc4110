import pytest
import torch

from tvae_lib import train_tvae
from tvae_lib.tvae import TVAEConfig

TINY = TVAEConfig(d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1, n_decoder_layers=1)


@pytest.mark.parametrize("variable_length", [False, True])
def test_train_run_records_a_history(variable_length):
    torch.set_num_threads(1)
    run = train_tvae.Run(
        config=TINY, recon="mse_sum", beta=0.1, epochs=1, batch_size=512,
        variable_length=variable_length,
    )  # fmt: skip
    model, history = train_tvae.train_run(run, progress=False)
    assert not model.training
    assert {"loss", "recon", "kl", "mse", "val_loss", "val_kl", "val_mse"} <= set(history.metrics)
    assert history.epochs == 1 and history["val_mse"][0] > 0


def test_step_fn_uses_the_schedule_state():
    model = train_tvae.TransformerVAE(TINY).eval()
    x = torch.randn(3, 10, 3)
    state = {"beta": 0.0}
    step = train_tvae.make_step_fn(train_tvae.Run(config=TINY, recon="mse_sum"), state)
    labels = torch.tensor([0, 1, 0])
    without_kl = step(model, (x, labels))
    state["beta"] = 1.0
    with_kl = step(model, (x, labels))
    torch.testing.assert_close(with_kl["loss"] - without_kl["loss"], with_kl["kl"])


def test_step_fn_adds_the_weighted_class_loss_and_decodes_free_running():
    config = TVAEConfig(**{**TINY.__dict__, "n_classes": 2})
    model = train_tvae.TransformerVAE(config).train()
    x, labels = torch.randn(3, 10, 3), torch.tensor([0, 1, 0])
    run = train_tvae.Run(config=config, recon="mse_sum", class_weight=3.0)
    state = {"beta": 1.0}
    out = train_tvae.make_step_fn(run, state)(model, (x, labels))
    mu, _ = model.encode(x)
    expected_ce = torch.nn.functional.cross_entropy(model.classify(mu), labels)
    torch.testing.assert_close(out["class_ce"], expected_ce)
    torch.testing.assert_close(out["loss"], out["recon"] + out["kl"] + 3.0 * expected_ce)
    # free running: the reconstruction is the model's own rollout from a sampled z
    state["free_running"] = True
    torch.manual_seed(0)
    free = train_tvae.make_step_fn(run, state)(model, (x, labels))
    torch.manual_seed(0)
    mu, logvar = model.encode(x)
    z = train_tvae.reparameterize(mu, logvar)
    rollout = train_tvae.rollout_tvae(model, z, 10)
    torch.testing.assert_close(free["mse"], (rollout - x).pow(2).mean())
    free["loss"].backward()
    assert model.decoder.layers[0].self_attn.q_proj.weight.grad is not None


def test_run_checks_the_class_weight_has_a_classifier():
    with pytest.raises(ValueError, match="n_classes"):
        train_tvae.Run(config=TINY, class_weight=1.0)


def test_free_running_phase_extends_the_history():
    torch.set_num_threads(1)
    run = train_tvae.Run(config=TINY, recon="mse_sum", epochs=1, free_running_epochs=1,
                         batch_size=1024)  # fmt: skip
    _, history = train_tvae.train_run(run, progress=False)
    assert history.epochs == 2 and len(history["val_mse"]) == 2


def test_validation_metrics_on_a_small_batch():
    model = train_tvae.TransformerVAE(TINY).eval()
    x = torch.randn(10, 8, 3)
    labels = torch.tensor([0, 1] * 5)
    metrics = train_tvae.validation_metrics(model, x, labels)
    assert metrics["mse_free_running"] > 0 and metrics["mse_teacher_forced"] > 0
    assert len(metrics["kl_per_dim"]) == len(metrics["mu_var"]) == TINY.latent_dim
    assert 0 <= metrics["knn_accuracy"] <= 1


def test_main_rejects_unknown_runs():
    with pytest.raises(SystemExit, match="unknown run"):
        train_tvae.main(["--runs", "nope"])
