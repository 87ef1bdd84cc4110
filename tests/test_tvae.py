import json
from pathlib import Path

import pytest
import torch
from check_numbers import glued_values  # tests/ is on the path, as for every test module

from tvae_lib import checkpoints, tvae
from tvae_lib.checkpoints import CheckpointError
from tvae_lib.data import load_door_cycles
from tvae_lib.evaluation import evaluate_tvae
from tvae_lib.masks import padding_mask
from tvae_lib.train_tvae import ABLATIONS, REMEDIES, RUNS, SEEDS, checkpoint_name
from tvae_lib.vae import vae_loss

SMALL = dict(d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1, n_decoder_layers=1, max_len=20,
             decoder_input_dropout=0.0, embedding="linear", pooling="mean")


def _model(**changes) -> tvae.TransformerVAE:
    return tvae.TransformerVAE(tvae.TVAEConfig(**{**SMALL, **changes}))


@pytest.mark.parametrize(("batch", "n_features"), [(1, 3), (4, 1), (2, 5)])
def test_shapes_for_any_batch_and_channel_count(batch, n_features):
    model = _model(n_features=n_features, latent_dim=3)
    x = torch.randn(batch, 12, n_features)
    x_hat, mu, logvar = model(x)
    assert x_hat.shape == x.shape and mu.shape == logvar.shape == (batch, 3)
    assert model.reconstruct(x).shape == x.shape
    assert model.reconstruct(x, free_running=False).shape == x.shape
    assert model.generate(batch, length=7).shape == (batch, 7, n_features)


def test_memory_is_one_position():
    model = _model()
    assert model.memory(torch.randn(5, 2)).shape == (5, 1, 16)


def test_decoder_is_causal_under_teacher_forcing():
    model = _model().eval()
    x = torch.randn(2, 10, 3)
    z = torch.randn(2, 2)
    changed = x.clone()
    changed[:, 6:] += 1.0  # inputs from step 6 on only reach predictions from step 7 on
    torch.testing.assert_close(model.decode(z, x)[:, :7], model.decode(z, changed)[:, :7])
    assert not torch.allclose(model.decode(z, x)[:, 7:], model.decode(z, changed)[:, 7:])


def test_free_running_equals_teacher_forcing_on_its_own_output():
    model = _model().eval()
    z = torch.randn(3, 2)
    with torch.no_grad():
        generated = model.free_run(z, 8)
    torch.testing.assert_close(model.decode(z, generated), generated, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "encoder",
    [{}, {"embedding": "conv"}, {"pooling": "mean_max"}, {"embedding": "conv", "pooling": "mean_max"}],
)
def test_padding_does_not_change_encoding_or_real_steps(encoder):
    model = _model(**encoder).eval()
    x = torch.randn(2, 9, 3)
    lengths = torch.tensor([9, 5])
    mask = padding_mask(lengths, 9)
    garbage = x.clone()
    garbage[1, 5:] = 50.0  # different padding values
    mu_a, logvar_a = model.encode(x, mask)
    mu_b, logvar_b = model.encode(garbage, mask)
    torch.testing.assert_close(mu_a, mu_b)
    torch.testing.assert_close(logvar_a, logvar_b)
    # the short sequence alone, unpadded, encodes to the same code
    mu_short, _ = model.encode(x[1:, :5])
    torch.testing.assert_close(mu_a[1:], mu_short, atol=1e-5, rtol=1e-5)
    out_a = model.decode(mu_a, x, mask)
    out_b = model.decode(mu_b, garbage, mask)
    torch.testing.assert_close(out_a[1, :5], out_b[1, :5])


def test_conv_embedding_sees_neighbouring_steps():
    x = torch.randn(1, 9, 3)
    spike = x.clone()
    spike[0, 4] += 5.0  # one step changed
    for embedding, touched in (("linear", [4]), ("conv", [3, 4, 5])):
        model = _model(embedding=embedding).eval()
        if embedding == "conv":
            embed = model.input_proj(x.transpose(1, 2)).transpose(1, 2)
            embed_spike = model.input_proj(spike.transpose(1, 2)).transpose(1, 2)
        else:
            embed, embed_spike = model.input_proj(x), model.input_proj(spike)
        changed = (embed - embed_spike).abs().sum(dim=-1)[0] > 1e-6  # (T,)
        assert changed.nonzero().flatten().tolist() == touched


def test_max_pooling_keeps_a_short_event_the_mean_dilutes():
    torch.manual_seed(0)
    x = torch.zeros(1, 20, 3)
    event = x.clone()
    event[0, 10] = 4.0  # one step of 20
    for pooling in ("mean", "mean_max"):
        model = _model(pooling=pooling).eval()
        assert model.to_mu.in_features == (32 if pooling == "mean_max" else 16)
    model = _model(pooling="mean_max").eval()
    h = model.encoder(model.positional(model.input_proj(torch.cat([x, event]))))
    mean_gap = (h[0].mean(0) - h[1].mean(0)).abs().max()
    max_gap = (h[0].amax(0) - h[1].amax(0)).abs().max()
    assert max_gap > mean_gap  # the maximum moves more than the mean for a one-step event


def test_classifier_head():
    model = _model(n_classes=4, latent_dim=3)
    assert model.classify(torch.randn(5, 3)).shape == (5, 4)
    with pytest.raises(ValueError, match="Z=3"):
        model.classify(torch.randn(5, 2))
    with pytest.raises(ValueError, match="no classifier"):
        _model().classify(torch.randn(5, 2))
    assert not any(name.startswith("classifier") for name in _model().state_dict())


def test_masked_loss_ignores_padding():
    model = _model().eval()
    x = torch.randn(2, 9, 3)
    mask = padding_mask(torch.tensor([9, 4]), 9)
    x_hat, mu, logvar = model(x, mask)
    loss = vae_loss(x_hat, x, mu, logvar, mask=mask)
    garbage = x.clone()
    garbage[1, 4:] = 99.0
    x_hat_g, mu_g, logvar_g = model(garbage, mask)
    torch.testing.assert_close(
        vae_loss(x_hat_g, garbage, mu_g, logvar_g, mask=mask)["loss"], loss["loss"]
    )


def test_decoder_input_dropout_only_in_training():
    model = _model(decoder_input_dropout=0.5)
    x, z = torch.randn(2, 10, 3), torch.randn(2, 2)
    model.eval()
    torch.testing.assert_close(model.decode(z, x), model.decode(z, x))
    model.train()
    assert not torch.allclose(model.decode(z, x), model.decode(z, x))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.randn(10, 3), r"\(B, T, F=3\)"),
        (torch.randn(2, 10, 4), "F=3 channels"),
        (torch.randn(2, 21, 3), "max_len=20"),
    ],
)
def test_bad_inputs_raise(x, match):
    with pytest.raises(ValueError, match=match):
        _model().encode(x)


def test_bad_masks_config_and_codes_raise():
    model = _model()
    x = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match=r"mask must have shape \(B, T\)=\(2, 5\)"):
        model.encode(x, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        model.encode(x, torch.ones(2, 5))
    with pytest.raises(ValueError, match="first step"):
        model.encode(x, torch.zeros(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="Z=2"):
        model.memory(torch.randn(2, 3))
    with pytest.raises(ValueError, match="length T=30"):
        model.generate(1, length=30)
    with pytest.raises(ValueError, match="n must be"):
        model.generate(0, length=3)
    with pytest.raises(ValueError, match="exactly one of length"):
        model.generate(2)
    with pytest.raises(ValueError, match="multiple of n_heads"):
        tvae.TVAEConfig(d_model=10, n_heads=4)
    with pytest.raises(ValueError, match="decoder_input_dropout"):
        tvae.TVAEConfig(decoder_input_dropout=1.0)
    with pytest.raises(ValueError, match="embedding must be"):
        tvae.TVAEConfig(embedding="patch")
    with pytest.raises(ValueError, match="pooling must be"):
        tvae.TVAEConfig(pooling="max")
    for bad in (1, -1, 2.0, True):
        with pytest.raises((TypeError, ValueError), match="n_classes must be"):
            tvae.TVAEConfig(n_classes=bad)
    with pytest.raises(TypeError, match="TVAEConfig"):
        tvae.TransformerVAE({"d_model": 8})


def test_checkpoint_round_trip(tmp_path):
    model = _model(latent_dim=3)
    path = checkpoints.save_model(model, tmp_path / "m.pt", metadata={"history": [1.0, 0.5]})
    loaded, metadata = checkpoints.load_model(path)
    assert loaded.config == model.config and metadata == {"history": [1.0, 0.5]}
    x = torch.randn(2, 6, 3)
    torch.testing.assert_close(loaded.reconstruct(x), model.reconstruct(x))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left behind


def test_interrupted_save_keeps_the_old_file(tmp_path, monkeypatch):
    model = _model()
    path = checkpoints.save_model(model, tmp_path / "m.pt")
    before = path.read_bytes()

    def broken_save(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save_model(_model(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_load_rejects_other_files(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt"):
        checkpoints.load_model(tmp_path / "other.pt")


def test_load_rejects_weights_that_do_not_fit_the_config(tmp_path):
    model = _model()

    state = {k: v for k, v in model.state_dict().items() if "to_mu" not in k}
    from dataclasses import asdict

    checkpoints.save_checkpoint(tmp_path / "m.pt", config=asdict(model.config), state_dict=state)
    with pytest.raises(CheckpointError, match="does not fit this TransformerVAE"):
        checkpoints.load_model(tmp_path / "m.pt")


def test_tiny_model_overfits_a_few_cycles(one_thread):
    t = torch.linspace(0, 1, 16)
    x = torch.stack(
        [
            torch.stack([torch.sin(6 * t + p), torch.cos(4 * t - p)], -1)
            for p in (0.0, 1.0, 2.0, 3.0)
        ]
    )  # (4, 16, 2)
    model = _model(n_features=2, latent_dim=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(500):
        x_hat, mu, logvar = model(x)
        loss = vae_loss(x_hat, x, mu, logvar, beta=0.01)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    mse = float((model.reconstruct(x) - x).pow(2).mean())
    assert mse < 0.02 * float(x.var())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    model = _model().cuda()
    x = torch.randn(2, 8, 3, device="cuda")
    assert model.reconstruct(x).device.type == "cuda"
    assert model.generate(2, length=4).device.type == "cuda"


# --- the committed chapter-7 checkpoints -------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_7 = ROOT / "notebooks" / "07_tvae.ipynb"


COMMITTED = sorted((ROOT / "checkpoints").glob("tvae_*.pt"))


def test_every_run_has_a_committed_checkpoint():
    names = {path.name for path in COMMITTED}
    assert {checkpoint_name(run) for run in RUNS} <= names
    # chapter 7's remedy table, final model and ablation, chapter 8's model of normal
    # operation: every run from every seed
    seeded = (*REMEDIES, "unsup_z4", *ABLATIONS, "normal_z4")
    assert {checkpoint_name(run, seed) for run in seeded for seed in SEEDS} <= names
    # and `make checkpoints` retrains exactly these from the seeds after 0
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8").replace("$\\\n\t", "")
    line = next(line for line in makefile.splitlines() if line.startswith("SEEDED_RUNS ="))
    assert line.split("=")[1].strip().split(",") == list(seeded)
    assert "--seeds " + ",".join(map(str, SEEDS[1:])) in makefile


@pytest.mark.parametrize("path", COMMITTED, ids=[path.stem for path in COMMITTED])
def test_checkpoints_load_into_the_current_code(path):
    model, metadata = checkpoints.load_model(path)
    run = metadata["run"]
    assert path.name == checkpoint_name(run, metadata.get("seed", 0))
    assert model.config == RUNS[run].config
    if model.config.learned_noise:  # fitted: finite and positive
        assert torch.isfinite(model.noise_variance()).all() and (model.noise_variance() > 0).all()
    recipe = RUNS[run].recipe
    assert len(metadata["history"]["val_kl"]) == recipe.epochs + recipe.free_running_epochs


def test_checkpoints_reproduce_the_glued_numbers():
    glued = glued_values(json.loads(CHAPTER_7.read_text(encoding="utf-8")))
    _, val = load_door_cycles()
    x, labels, _ = val.tensors()
    collapsed, _ = checkpoints.load_model(ROOT / "checkpoints" / "tvae_collapsed.pt")
    assert (
        evaluate_tvae(collapsed, x, labels=labels, free_running=False)["active_units"]
        == (glued["collapsed_active_units"])
    )
    final, _ = checkpoints.load_model(ROOT / "checkpoints" / "tvae_final.pt")
    metrics = evaluate_tvae(final, x, labels=labels)
    assert metrics["active_units"] == glued["tvae_active_units"]
    expected = {
        "mse_free_running": glued["tvae_val_mse_free_running"],
        "mse_teacher_forced": glued["tvae_val_mse_teacher_forced"],
        "knn_accuracy": glued["tvae_latent_knn_accuracy"],
    }
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, abs=1e-4), name
    # the unsupervised final model over its three seeds
    train, _ = load_door_cycles()
    x_train, labels_train, _ = train.tensors()
    runs = [
        evaluate_tvae(checkpoints.load_model(ROOT / "checkpoints" / checkpoint_name(
            "unsup_z4", seed))[0], x, labels=labels, train=(x_train, None, labels_train))
        for seed in SEEDS
    ]  # fmt: skip
    free_running = [run["mse_free_running"] for run in runs]
    assert sum(free_running) / len(SEEDS) == pytest.approx(
        glued["tvae_unsup_val_mse_free_running_mean"], rel=1e-4)
    knn = sum(run["knn_accuracy"] for run in runs) / len(SEEDS)
    assert knn == pytest.approx(glued["tvae_unsup_knn_accuracy"], abs=1e-4)
    assert min(run["active_units"] for run in runs) == glued["tvae_unsup_active_units"]


def test_variable_length_checkpoint_reproduces_chapter_7s_numbers():
    # the unsupervised recipe on variable-length cycles: the glued errors, every unit active
    glued = glued_values(json.loads(CHAPTER_7.read_text(encoding="utf-8")))
    model, metadata = checkpoints.load_model(
        ROOT / "checkpoints" / checkpoint_name("variable_length"))
    assert metadata["run"] == "variable_length" and model.config.n_classes == 0
    _, val = load_door_cycles(variable_length=True)
    x, labels, lengths = val.tensors()
    metrics = evaluate_tvae(model, x[:128], padding_mask(lengths[:128], x.shape[1]),
                            labels=labels[:128])
    assert metrics["mse_free_running"] == pytest.approx(glued["vl_free_running_mse"], rel=1e-4)
    assert metrics["active_units"] == glued["vl_active_units"] == model.config.latent_dim
    assert metadata["history"]["val_mse"][-1] == glued["vl_val_mse_last"]


def test_remedy_checkpoints_reproduce_chapter_7s_table():
    # the shuffle test of every remedy from every seed: only the combination uses z
    from tvae_lib.evaluation import shuffle_test

    glued = glued_values(json.loads(CHAPTER_7.read_text(encoding="utf-8")))
    _, val = load_door_cycles()
    x = val.tensors()[0]
    ratios = {}
    for run in REMEDIES:
        for seed in SEEDS:
            model, _ = checkpoints.load_model(ROOT / "checkpoints" / checkpoint_name(run, seed))
            own, shuffled = shuffle_test(model, x)
            ratios[run, seed] = shuffled / own
    combination = [ratios["dropout_kl_weight", seed] for seed in SEEDS]
    others = [ratio for (run, _), ratio in ratios.items() if run != "dropout_kl_weight"]
    assert sum(combination) / len(SEEDS) == pytest.approx(
        glued["dropout_kl_weight_shuffle_ratio"], rel=1e-4)
    assert min(combination) == pytest.approx(glued["dropout_kl_weight_shuffle_ratio_min"],
                                             rel=1e-4)  # fmt: skip
    assert max(others) == pytest.approx(glued["remedies_collapsed_shuffle_ratio_max"], rel=1e-4)
    assert min(combination) > 2 > 1.02 > max(others)


def test_ablation_checkpoints_reproduce_chapter_7s_table():
    # the free-running error of each ablated recipe, mean over its seeds, as chapter 7 glues it
    glued = glued_values(json.loads(CHAPTER_7.read_text(encoding="utf-8")))
    _, val = load_door_cycles()
    x = val.tensors()[0]
    for run in ABLATIONS:
        errors = []
        for seed in SEEDS:
            model, metadata = checkpoints.load_model(
                ROOT / "checkpoints" / checkpoint_name(run, seed))
            assert (metadata["run"], metadata["seed"]) == (run, seed)
            errors.append(evaluate_tvae(model, x)["mse_free_running"])
        assert sum(errors) / len(SEEDS) == pytest.approx(
            glued[f"ablation_{run}_mse_free_running_mean"], rel=1e-4), run


def test_normal_checkpoints_reproduce_chapter_8s_anomaly_numbers():
    # chapter 8's best score (the learned noise's likelihood) from its three committed models
    from tvae_lib.anomaly import roc_auc_per_class
    from tvae_lib.data import CLASS_NAMES
    from tvae_lib.harness import estimate
    from tvae_lib.sequence_scores import tvae_sequence_scores

    chapter_8 = ROOT / "notebooks" / "08_generation.ipynb"
    glued = glued_values(json.loads(chapter_8.read_text(encoding="utf-8")))
    _, val = load_door_cycles()
    x = torch.from_numpy(val.x)
    means = []
    for seed in SEEDS:
        model, metadata = checkpoints.load_model(
            ROOT / "checkpoints" / checkpoint_name("normal_z4", seed))
        assert metadata["run"] == "normal_z4" and RUNS["normal_z4"].normal_only
        scores = tvae_sequence_scores(model, x, n_samples=4, batch_size=256)["noise_nll"]
        auc = roc_auc_per_class(scores, val.labels, CLASS_NAMES)
        means.append(sum(auc.values()) / len(auc))
    result = estimate(means)
    assert result.mean == pytest.approx(glued["anomaly_auc_mean"], abs=1e-4)
    assert result.ci95 == pytest.approx(glued["anomaly_auc_ci95"], abs=1e-4)


def test_the_final_checkpoints_noise_is_what_fit_noise_gives(one_thread):
    # chapter 8's door generator adds the noise's mean: a speed offset at rest that it glues
    chapter_8 = ROOT / "notebooks" / "08_generation.ipynb"
    glued = glued_values(json.loads(chapter_8.read_text(encoding="utf-8")))
    model, _ = checkpoints.load_model(ROOT / "checkpoints" / checkpoint_name("unsup_z4"))
    stored_mean, stored_var = model.noise_mean.clone(), model.noise_variance().clone()
    rest = slice(79, 109)  # the last 30 steps
    assert -stored_mean[rest, 2].mean().item() == pytest.approx(glued["door_rest_speed_bias"])
    train_cycles, _ = load_door_cycles()
    model.fit_noise(torch.from_numpy(train_cycles.x))  # the fit `make checkpoints` ends with
    torch.testing.assert_close(model.noise_mean, stored_mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(model.noise_variance(), stored_var, rtol=1e-5, atol=0)
