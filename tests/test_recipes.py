import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from tvae_lib import recipes, train_tvae
from tvae_lib.evaluation import evaluate_tvae, mean_mse, shuffle_test
from tvae_lib.sequences import SequenceDataset
from tvae_lib.tvae import TransformerVAE, TVAEConfig
from tvae_lib.utils import seed_everything
from tvae_lib.vae import reparameterize

TINY = TVAEConfig(d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1, n_decoder_layers=1,
                  max_len=20, decoder_input_dropout=0.0)  # fmt: skip


def _sequences(n=24, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 12)
    return [np.stack([np.sin(6 * t + p), np.cos(3 * t - p), t * p], -1).astype(np.float32)[
        : rng.integers(6, 13)] for p in rng.uniform(0, 3, n)]  # fmt: skip


@pytest.mark.parametrize("batch_form", ["tensor", "tuple", "padded"])
def test_train_takes_any_dataset_and_records_a_history(batch_form):
    torch.manual_seed(0)
    sequences = _sequences()
    if batch_form == "padded":
        dataset = SequenceDataset(sequences)
        loader = DataLoader(dataset, batch_size=8, collate_fn=dataset.collate)
    else:
        x = torch.from_numpy(np.stack([s[:6] for s in sequences]))
        loader = DataLoader(x if batch_form == "tensor" else TensorDataset(x), batch_size=8)
    model = TransformerVAE(TINY)
    history = recipes.train(model, recipes.Recipe(epochs=2, free_running_epochs=1), loader, loader)
    assert not model.training
    assert {"loss", "recon", "kl", "mse", "val_loss", "val_kl", "val_mse"} <= set(history.metrics)
    assert history.epochs == 3 and history["val_mse"][0] > 0


def test_the_default_recipe_is_not_the_collapsing_objective():
    recipe = recipes.Recipe()
    assert recipe.recon == "mse_sum" and recipe.beta < 1 and recipe.free_running_epochs > 0
    assert TVAEConfig().decoder_input_dropout > 0


def test_step_fn_uses_the_schedule_state():
    model = TransformerVAE(TINY).eval()
    x = torch.randn(3, 10, 3)
    state = {"beta": 0.0}
    step = recipes.make_step_fn(recipes.Recipe(), state)
    without_kl = step(model, (x,))
    state["beta"] = 1.0
    with_kl = step(model, (x,))
    torch.testing.assert_close(with_kl["loss"] - without_kl["loss"], with_kl["kl"])


def test_validation_applies_the_training_input_dropout_with_a_fixed_draw():
    model = TransformerVAE(TVAEConfig(**{**TINY.__dict__, "decoder_input_dropout": 0.5})).eval()
    x = torch.randn(4, 10, 3)
    step = recipes.make_step_fn(recipes.Recipe(), {"beta": 0.1})
    clean = recipes.make_step_fn(recipes.Recipe(), {"beta": 0.1})
    a = step(model, x)
    b = recipes.make_step_fn(recipes.Recipe(), {"beta": 0.1,
                             "val_generator": torch.Generator().manual_seed(0)})(model, x)
    c = recipes.make_step_fn(recipes.Recipe(), {"beta": 0.1,
                             "val_generator": torch.Generator().manual_seed(0)})(model, x)
    torch.testing.assert_close(b["loss"], c["loss"])  # the same steps dropped
    no_dropout = TransformerVAE(TINY).eval()
    no_dropout.load_state_dict(model.state_dict())
    assert float(clean(no_dropout, x)["mse"].detach()) != float(a["mse"].detach())


def test_step_fn_adds_the_weighted_class_loss_and_decodes_free_running():
    config = TVAEConfig(**{**TINY.__dict__, "n_classes": 2})
    model = TransformerVAE(config).train()
    x, labels = torch.randn(3, 10, 3), torch.tensor([0, 1, 0])
    recipe = recipes.Recipe(beta=1.0, class_weight=3.0)
    state = {"beta": 1.0}
    out = recipes.make_step_fn(recipe, state)(model, (x, labels))
    mu, _ = model.encode(x)
    expected_ce = torch.nn.functional.cross_entropy(model.classify(mu), labels)
    torch.testing.assert_close(out["class_ce"], expected_ce)
    torch.testing.assert_close(out["loss"], out["recon"] + out["kl"] + 3.0 * expected_ce)
    state["free_running"] = True
    torch.manual_seed(0)
    free = recipes.make_step_fn(recipe, state)(model, (x, labels))
    torch.manual_seed(0)
    mu, logvar = model.encode(x)
    rollout = model.free_run(reparameterize(mu, logvar), 10)
    torch.testing.assert_close(free["mse"], (rollout - x).pow(2).mean())
    free["loss"].backward()
    assert model.decoder.layers[0].self_attn.q_proj.weight.grad is not None


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (None, "needs labels"),
        (torch.tensor([0, 2, 1]), r"labels must lie in \[0, n_classes=2\), got 0..2"),
        (torch.tensor([0, -1, 1]), r"labels must lie in \[0, n_classes=2\)"),
        (torch.tensor([0.0, 1.0, 1.0]), "labels must be 3 integers"),
        (torch.tensor([0, 1]), "labels must be 3 integers"),
    ],
)
def test_bad_labels_get_a_clear_error(labels, match):
    model = TransformerVAE(TVAEConfig(**{**TINY.__dict__, "n_classes": 2}))
    step = recipes.make_step_fn(recipes.Recipe(class_weight=1.0), {"beta": 0.1})
    batch = torch.randn(3, 10, 3) if labels is None else (torch.randn(3, 10, 3), labels)
    with pytest.raises(ValueError, match=match):
        step(model, batch)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"recon": "mse"}, ValueError), ({"beta": -0.1}, ValueError),
        ({"beta": float("nan")}, ValueError), ({"epochs": 0}, ValueError),
        ({"epochs": True}, TypeError), ({"epochs": 2.5}, TypeError), ({"lr": 0.0}, ValueError),
        ({"batch_size": -1}, ValueError), ({"free_running_epochs": -1}, ValueError),
        ({"clip_grad_norm": 0}, ValueError),
    ],
)  # fmt: skip
def test_recipe_checks_its_fields(changes, error):
    with pytest.raises(error):
        recipes.Recipe(**changes)


def test_bad_batches_and_models():
    step = recipes.make_step_fn(recipes.Recipe(), {"beta": 0.1})
    with pytest.raises(TypeError, match="a batch must be"):
        step(TransformerVAE(TINY), {"x": torch.randn(2, 5, 3)})
    with pytest.raises(TypeError, match="recipe must be a Recipe"):
        recipes.make_step_fn({"beta": 0.1}, {})
    with pytest.raises(ValueError, match="needs a classifier"):
        recipes.train(TransformerVAE(TINY), recipes.Recipe(class_weight=1.0), [])
    with pytest.raises(TypeError, match="model must be a TransformerVAE"):
        recipes.train(torch.nn.Linear(2, 2), recipes.Recipe(), [])


def test_book_runs_train_on_the_door_data(one_thread):
    run = train_tvae.BookRun(TVAEConfig(**{**TINY.__dict__, "max_len": 128}),
                             recipes.Recipe(epochs=1, batch_size=1024, free_running_epochs=0),
                             variable_length=True)
    model, history = train_tvae.train_run(run, progress=False)
    assert history.epochs == 1 and not model.training


def test_main_rejects_unknown_runs():
    with pytest.raises(SystemExit, match="unknown run"):
        train_tvae.main(["--runs", "nope"])


def test_default_config_and_recipe_keep_the_code_alive_on_new_data(one_thread):
    # a dataset the defaults were not tuned on: two channels, two factors (amplitude, frequency)
    rng = np.random.default_rng(0)
    t = np.arange(24)[None, :, None]
    amplitude, freq = rng.uniform(0.5, 2.0, (64, 1, 1)), rng.uniform(0.1, 0.4, (64, 1, 1))
    waves = amplitude * np.concatenate([np.sin(freq * t), np.cos(freq * t)], axis=2)
    x = torch.from_numpy(waves.astype(np.float32))  # (64, 24, 2)
    seed_everything(0)
    model = TransformerVAE(TVAEConfig(n_features=2, max_len=24))
    recipe = recipes.Recipe(epochs=10, free_running_epochs=10)  # the defaults, shortened
    loader = DataLoader(TensorDataset(x), batch_size=recipe.batch_size, shuffle=True)
    recipes.train(model, recipe, loader)
    report = evaluate_tvae(model, x)
    own, shuffled = shuffle_test(model, x)
    assert report["active_units"] == 2, report
    assert shuffled > 1.05 * own  # the decoder reads z
    assert report["mse_free_running"] < mean_mse(x, x)
