import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from tvae_lib import numerics, scores, views
from tvae_lib.sines import make_sines

FAST = dict(hidden_size=2, iterations=30, batch_size=16, lr=1e-2, seed=3)


@pytest.fixture(scope="module")
def sines():
    return make_sines(300, seed=0), make_sines(300, seed=1)


@pytest.fixture(scope="module")
def padded():
    """Sines of lengths 8..16 stored in T = 24, zero-padded: (full sequences, padded, lengths)."""
    full = make_sines(120, seq_len=24, n_channels=4, seed=0)
    lengths = np.random.default_rng(0).integers(8, 17, len(full))
    real = np.arange(24)[None, :, None] < lengths[:, None, None]  # (N, T, 1)
    return full, np.where(real, full, 0).astype(np.float32), lengths


def test_gru_models_shapes():
    x = torch.randn(4, 7, 5)
    assert scores.GRUClassifier(5, 2)(x).shape == (4,)
    out = scores.GRUPredictor(5, 2)(x)
    assert out.shape == (4, 7) and bool(((out > 0) & (out < 1)).all())


def test_classifier_with_lengths_stops_at_each_last_real_step():
    model, x, lengths = scores.GRUClassifier(3, 2), torch.randn(4, 7, 3), torch.tensor([7, 2, 5, 1])
    with torch.no_grad():
        packed = model(x, lengths)
        one_by_one = torch.cat([model(x[i : i + 1, : int(n)]) for i, n in enumerate(lengths)])
    torch.testing.assert_close(packed, one_by_one)


def test_the_numbers_of_the_old_metrics_module():
    # Computed with tvae_lib.metrics as it was before the split (commit 4025dff), in the
    # reproducible mode, on these inputs; outside the mode only the last bits may differ.
    real = make_sines(40, seq_len=10, n_channels=4, seed=0)
    generated = make_sines(40, seq_len=10, n_channels=4, seed=1)
    got = [scores.discriminative_score(real, generated, **FAST),
           scores.predictive_score(real, generated, **FAST),
           *views.embed_real_and_generated(real, generated, n_samples=20, seed=3)[0][0]]
    old = [0.0625, 0.06947208195924759, 0.1331477165222168, 0.0037908554077148438]
    if numerics.in_mode():
        assert got == old
    else:
        assert got == pytest.approx(old, rel=1e-5, abs=1e-5)


def test_lengths_all_t_give_the_same_bits_as_no_lengths(sines):
    real, other = sines[0][:80], sines[1][:60]
    full = dict(real_lengths=np.full(80, 24), generated_lengths=torch.full((60,), 24))
    for score in (scores.discriminative_score, scores.predictive_score):
        assert score(real, other, **FAST) == score(real, other, **FAST, **full)
    plain = views.embed_real_and_generated(real, other, n_samples=30)
    for a, b in zip(plain, views.embed_real_and_generated(real, other, n_samples=30, **full),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def test_discriminative_score_is_low_for_the_same_distribution(sines):
    real, other = sines
    score = scores.discriminative_score(real, other, hidden_size=4, iterations=100, lr=1e-2)
    assert 0.0 <= score < 0.08


def test_discriminative_score_is_high_for_an_obvious_fake(sines):
    real, _ = sines
    flat = np.full_like(real, 0.75) + np.random.default_rng(0).normal(0, 0.1, real.shape)
    score = scores.discriminative_score(real, flat.astype(np.float32), hidden_size=4,
                                        iterations=100, lr=1e-2)
    assert score > 0.4


def test_discriminative_score_does_not_reward_answering_the_larger_set(sines):
    # real 300 and "generated" 60 from the same distribution: a classifier that always says
    # "real" has a plain accuracy of 60/72 on the test sets, a score of 0.33; balanced, 0.
    real, other = sines
    options = dict(hidden_size=4, iterations=100, lr=1e-2)
    assert scores.discriminative_score(real, other[:60], **options) < 0.08
    assert max(scores.discriminative_scores(real, other[:60], seeds=[0, 1], **options)) < 0.08
    # and a classifier that answers at random scores near 0, whatever the sizes
    answers = torch.rand(2000, generator=torch.Generator().manual_seed(0)) < 0.9
    labels = torch.cat([torch.ones(1800), torch.zeros(200)])
    assert abs(scores._balanced_accuracy(answers, labels).item() - 0.5) < 0.05
    assert abs((answers == labels.bool()).float().mean().item() - 0.5) > 0.25  # plain: fooled


def test_scores_are_reproducible_and_leave_the_global_rng_alone(sines, padded):
    _, x, lengths = padded
    for score, real, other, kwargs in (
        (scores.discriminative_score, *sines, {}),
        (scores.predictive_score, *sines, {}),
        (scores.discriminative_score, x, x[::-1],
         dict(real_lengths=lengths, generated_lengths=lengths[::-1])),
    ):
        first = score(real, other, **FAST, **kwargs)
        state = torch.get_rng_state()
        assert score(real, other, **FAST, **kwargs) == first
        torch.testing.assert_close(torch.get_rng_state(), state)


def test_padding_is_what_tells_the_sets_apart_without_lengths(padded):
    # The same sequences twice, stored with different amounts of padding: "real" zero-padded
    # after each length, "generated" running on to T. Without lengths the discriminator
    # separates them by the padding alone (0.49 on a real data set); with lengths it cannot.
    full, x, lengths = padded
    kwargs = dict(hidden_size=2, iterations=100, lr=1e-2)
    assert scores.discriminative_score(x, full, **kwargs) > 0.4
    assert scores.discriminative_score(x, full, real_lengths=lengths, generated_lengths=lengths,
                                       **kwargs) < 0.15


def test_the_amount_of_padding_cannot_change_a_score(padded):
    _, x, lengths = padded
    longer = np.concatenate([x, np.full((len(x), 8, 4), 7.0, np.float32)], axis=1)  # T' = 32
    both = dict(real_lengths=lengths, generated_lengths=lengths[::-1])
    for score in (scores.discriminative_score, scores.predictive_score):
        assert score(x, x[::-1], **FAST, **both) == score(x, longer[::-1], **FAST, **both)


def test_what_padding_holds_cannot_reach_a_score(padded):
    full, x, lengths = padded
    real = np.arange(24)[None, :, None] < lengths[:, None, None]  # (N, T, 1)
    junk = np.random.default_rng(0).choice([np.nan, np.inf, -np.inf, 1e20], size=full.shape)
    dirty = np.where(real, full, junk).astype(np.float32)
    both = dict(real_lengths=lengths, generated_lengths=lengths[::-1])
    for score in (scores.discriminative_score, scores.predictive_score):
        assert score(x, x[::-1], **FAST, **both) == score(dirty, dirty[::-1], **FAST, **both)
    clean = views.embed_real_and_generated(x, x[::-1], n_samples=50, **both)
    for a, b in zip(clean, views.embed_real_and_generated(dirty, dirty[::-1], n_samples=50,
                                                           **both), strict=True):
        np.testing.assert_array_equal(a, b)


def test_predictive_score_prefers_realistic_training_data(sines):
    real, other = sines
    shuffled = other[:, np.random.default_rng(0).permutation(24)]  # right values, wrong order
    good = scores.predictive_score(real, other, hidden_size=4, iterations=150, lr=1e-2)
    bad = scores.predictive_score(real, shuffled, hidden_size=4, iterations=150, lr=1e-2)
    assert good < 0.11 and bad > good + 0.02


@pytest.mark.parametrize("with_lengths", [False, True])
def test_predictive_score_is_the_mae_of_the_trained_predictor(padded, monkeypatch, with_lengths):
    # Rebuild the score by hand: MAE of the last channel one step on, over real targets only.
    full, x, lengths = padded
    real, lengths = (x, lengths) if with_lengths else (full, np.full(len(full), 24))
    captured = {}

    class Spy(scores.GRUPredictor):
        def __init__(self, *args):
            super().__init__(*args)
            captured["model"] = self

    monkeypatch.setattr(scores, "GRUPredictor", Spy)
    kwargs = dict(real_lengths=lengths, generated_lengths=lengths) if with_lengths else {}
    score = scores.predictive_score(real, real, hidden_size=2, iterations=5, **kwargs)
    t = torch.from_numpy(real)
    with torch.no_grad():
        error = (captured["model"](t[:, :-1, :-1]) - t[:, 1:, -1]).abs()  # (N, T-1)
    targets = np.arange(1, 24)[None, :] < lengths[:, None]  # steps 1..L-1
    assert score == pytest.approx(error[torch.from_numpy(targets)].mean().item(), rel=1e-6)


@pytest.mark.parametrize("with_lengths", [False, True])
def test_stacked_gru_computes_what_each_nn_gru_computes(with_lengths):
    torch.manual_seed(0)
    grus = [torch.nn.GRU(3, 4, batch_first=True) for _ in range(3)]
    stacked = scores.StackedGRU(grus)
    x = torch.randn(3, 5, 7, 3)  # (R, B, T, F)
    lengths = torch.tensor([[7, 2, 5, 1, 3]] * 3) if with_lengths else None
    with torch.no_grad():
        states, last = stacked(x, lengths)
        for r, gru in enumerate(grus):
            expected_states, _ = gru(x[r])  # (B, T, H)
            if with_lengths:  # the last state of each sequence at its own last real step
                expected_last = torch.stack(
                    [gru(x[r, i : i + 1, :n])[1][0, 0] for i, n in enumerate(lengths[r])])
            else:
                expected_last = expected_states[:, -1]
                torch.testing.assert_close(states[r], expected_states)
            torch.testing.assert_close(last[r], expected_last)


@pytest.mark.parametrize("with_lengths", [False, True])
def test_runs_trained_together_give_each_seed_its_own_score(padded, with_lengths):
    # discriminative_scores / predictive_scores stack the runs; each must be the one-run
    # function with its seed, up to rounding (an accuracy may move by one test sequence).
    full, x, lengths = padded
    real, other = (x, x[::-1] * 0.9) if with_lengths else (full, full[::-1] * 0.9)
    kwargs = dict(real_lengths=lengths, generated_lengths=lengths[::-1]) if with_lengths else {}
    kwargs.update(hidden_size=2, iterations=60, batch_size=16, lr=1e-2)
    seeds = (3, 5, 11)
    together = scores.discriminative_scores(real, other, seeds, **kwargs)
    one_by_one = [scores.discriminative_score(real, other, seed=s, **kwargs) for s in seeds]
    n_test = 2 * (len(real) - round(0.8 * len(real)))
    np.testing.assert_allclose(together, one_by_one, atol=1 / n_test + 1e-6)
    assert len(set(together)) > 1  # the seeds differ, so the runs do
    together = scores.predictive_scores(real, other, seeds, **kwargs)
    one_by_one = [scores.predictive_score(real, other, seed=s, **kwargs) for s in seeds]
    np.testing.assert_allclose(together, one_by_one, rtol=1e-4)
    assert len(set(together)) == 3


def test_sets_of_any_sizes_and_lengths_are_scored_together(padded):
    # sets that cannot share a stack (sizes, lengths) are trained in groups of their own
    full, x, lengths = padded
    kwargs = dict(hidden_size=2, iterations=40, batch_size=16, lr=1e-2)
    sets = [full[::-1] * 0.9, full[:50], x[::-1]]
    set_lengths = [None, None, lengths[::-1]]
    together = scores.discriminative_score_sets(full, sets, (1, 2), generated_lengths=set_lengths,
                                                **kwargs)  # fmt: skip
    for got, data, data_lengths in zip(together, sets, set_lengths, strict=True):
        alone = scores.discriminative_scores(full, data, (1, 2), generated_lengths=data_lengths,
                                             **kwargs)  # fmt: skip
        np.testing.assert_allclose(got, alone, atol=1e-6)
    errors = scores.predictive_score_sets(full, sets, (1, 2), generated_lengths=set_lengths,
                                          **kwargs)  # fmt: skip
    for got, data, data_lengths in zip(errors, sets, set_lengths, strict=True):
        alone = scores.predictive_scores(full, data, (1, 2), generated_lengths=data_lengths,
                                         **kwargs)  # fmt: skip
        np.testing.assert_allclose(got, alone, rtol=1e-5)
    with pytest.raises(ValueError, match="one entry per set"):
        scores.discriminative_score_sets(full, sets, generated_lengths=[None])
    with pytest.raises(ValueError, match="at least one set"):
        scores.predictive_score_sets(full, [])


def test_stacked_gru_needs_alike_one_layer_grus():
    with pytest.raises(ValueError, match="one-layer, one-way nn.GRU"):
        scores.StackedGRU([torch.nn.GRU(3, 2, num_layers=2)])
    with pytest.raises(ValueError, match="one-layer, one-way nn.GRU"):
        scores.StackedGRU([])
    with pytest.raises(ValueError, match="must share their sizes"):
        scores.StackedGRU([torch.nn.GRU(3, 2), torch.nn.GRU(3, 4)])


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embeddings_shapes(sines, method):
    real, other = sines
    a, b = views.embed_real_and_generated(real, other, method=method, n_samples=60)
    assert a.shape == (60, 2) and b.shape == (60, 2)
    assert np.isfinite(a).all() and np.isfinite(b).all()


def test_pca_embedding_is_sklearn_pca_of_channel_means(sines):
    real, other = sines
    a, _ = views.embed_real_and_generated(real, other, n_samples=300)
    order = np.random.default_rng(0).permutation(300)
    flat = real[order].mean(axis=2)
    np.testing.assert_allclose(a, PCA(2).fit_transform(flat), atol=1e-5)


def test_pca_embedding_with_lengths_resamples_each_real_part_to_t_points(padded):
    _, x, lengths = padded
    a, _ = views.embed_real_and_generated(x, x, n_samples=120, real_lengths=lengths,
                                           generated_lengths=lengths)
    order = np.random.default_rng(0).permutation(120)
    flat = np.stack([np.interp(np.linspace(0, n - 1, 24), np.arange(n), x[i, :n].mean(axis=1))
                     for i, n in zip(order, lengths[order], strict=True)])  # (N, T)
    np.testing.assert_allclose(a, PCA(2).fit_transform(flat), atol=1e-5)


def _call(name, real, generated, **kwargs):
    module = views if name == "embed_real_and_generated" else scores
    return getattr(module, name)(real, generated, **kwargs)


R = make_sines(6, seq_len=5, n_channels=3, seed=0)
NAN_AT_REAL = R.copy()
NAN_AT_REAL[2, 1, 0] = np.nan
L = np.array([5, 4, 3, 2, 1, 5])


@pytest.mark.parametrize("name, real, generated, kwargs, error, match", [
    ("discriminative_score", R, R[:, :, :2], {}, ValueError, "must share"),
    ("discriminative_score", R, R[:, :4], {}, ValueError, r"must share \(T, F\)"),
    ("discriminative_score", R[0], R, {}, ValueError, r"real must have shape \(N, T, F\)"),
    ("discriminative_score", [[[0.0]]], R, {}, TypeError, "real must be a NumPy array"),
    ("discriminative_score", R, R[:1], {}, ValueError, "generated needs >= 2 sequences"),
    ("discriminative_score", R, R, dict(train_fraction=1.0), ValueError, "train_fraction"),
    ("discriminative_score", R, R, dict(train_fraction=0), ValueError, "train_fraction"),
    ("discriminative_score", R, R, dict(iterations=0), ValueError, "iterations must be"),
    ("discriminative_score", R, R, dict(iterations=True), TypeError, "iterations must be"),
    ("discriminative_score", R, R, dict(batch_size=2.0), TypeError, "batch_size must be"),
    ("discriminative_score", R, R, dict(hidden_size=-1), ValueError, "hidden_size must be"),
    ("discriminative_score", NAN_AT_REAL, R, {}, ValueError, "real has a non-finite value"),
    ("discriminative_score", R, NAN_AT_REAL, dict(generated_lengths=L), ValueError,
     r"generated has a non-finite value at a real step \(sequence 2, step 1\)"),
    ("discriminative_score", R, R, dict(real_lengths=L + 1), ValueError, "real_lengths must lie"),
    ("discriminative_score", R, R, dict(generated_lengths=L[:3]), ValueError,
     r"generated_lengths must have shape \(N=6,\)"),
    ("discriminative_score", R, R, dict(real_lengths=L * 1.0), TypeError, "must hold integers"),
    ("predictive_score", R[..., :1], R[..., :1], {}, ValueError, "F >= 2"),
    ("predictive_score", R, R, dict(generated_lengths=L), ValueError,
     "generated_lengths .* must be >= 2"),
    ("predictive_score", R[:, :1], R[:, :1], {}, ValueError, "real_lengths .* must be >= 2"),
    ("predictive_score", R, R, dict(lr=0.0), ValueError, "lr must be > 0"),
    ("discriminative_scores", R, R, dict(seeds=()), ValueError, "seeds must hold at least one"),
    ("predictive_scores", R, R, dict(seeds=(1, 1)), ValueError, "each once"),
    ("discriminative_scores", R, R, dict(seeds=(0, -1)), ValueError, "seeds must be"),
    ("predictive_scores", R, R, dict(seeds=[1.5]), TypeError, "seeds must be"),
    ("predictive_scores", R[..., :1], R[..., :1], {}, ValueError, "F >= 2"),
    ("embed_real_and_generated", R, R, dict(method="umap"), ValueError, "method must be"),
    ("embed_real_and_generated", R, R, dict(n_samples=1), ValueError, ">= 2 sequences"),
    ("embed_real_and_generated", R, R, dict(seed=-1), ValueError, "seed must be"),
])
def test_bad_inputs(name, real, generated, kwargs, error, match):
    with pytest.raises(error, match=match):
        _call(name, real, generated, **kwargs)
