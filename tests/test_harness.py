import math

import numpy as np
import pytest
from scipy import stats

from tvae_lib import harness, scores
from tvae_lib.sines import make_sines

FAST = {"discriminative_options": {"iterations": 30, "batch_size": 16},
        "predictive_options": {"iterations": 30, "batch_size": 16}}  # fmt: skip


@pytest.fixture(scope="module")
def sines():
    data = make_sines(96, seq_len=12, n_channels=3, seed=0)
    return data[:48], data[48:]


def test_estimate_is_the_t_interval_of_the_mean():
    values = [0.1, 0.3, 0.2, 0.25, 0.15]
    result = harness.estimate(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values),
                                 scale=stats.sem(values))  # fmt: skip
    assert result.mean == pytest.approx(0.2)
    assert result.sd == pytest.approx(np.std(values, ddof=1))
    assert result.ci95 == pytest.approx((high - low) / 2)
    assert str(result) == f"0.200 ± {result.ci95:.3f}"


@pytest.mark.parametrize("values", [[0.1], [], [0.1, float("nan")], [0.1, float("inf")]])
def test_estimate_needs_two_finite_values(values):
    with pytest.raises(ValueError, match="an interval needs >= 2 finite values"):
        harness.estimate(values)


def test_repeated_scores_train_each_run_with_its_own_seed(sines):
    real, generated = sines
    result = harness.repeated_scores(real, generated, runs=3, seed=7, **FAST)
    assert set(result) == {"discriminative", "predictive"}
    expected = scores.discriminative_scores(real, generated, seeds=(7, 8, 9), iterations=30,
                                            batch_size=16)  # fmt: skip
    assert result["discriminative"].values == tuple(expected)
    assert len(result["predictive"].values) == 3
    only = harness.repeated_scores(real, generated, runs=2, predictive=False, **FAST)
    assert set(only) == {"discriminative"}
    with pytest.raises(ValueError, match="runs"):
        harness.repeated_scores(real, generated, runs=1)


def test_noise_like_has_the_data_mean_and_spread_at_each_step():
    rng = np.random.default_rng(0)
    real = (rng.normal(size=(400, 5, 2)) * [1.0, 3.0] + np.arange(5)[:, None]).astype(np.float32)
    noise = harness.noise_like(real, 4000, seed=1)
    assert noise.shape == (4000, 5, 2) and noise.dtype == np.float32
    sd = real.std(axis=0, ddof=1)  # (T, F)
    assert (np.abs(noise.mean(axis=0) - real.mean(axis=0)) < 4 * sd / np.sqrt(4000)).all()
    np.testing.assert_allclose(noise.std(axis=0), sd, rtol=0.08)


def test_noise_like_ignores_padding():
    real = np.ones((3, 4, 1), dtype=np.float32)
    real[:, :, 0] = [[1, 2, 9, 9], [3, 4, np.nan, 9], [5, 6, 7, np.nan]]
    lengths = np.array([2, 2, 3])
    noise = harness.noise_like(real, 2000, lengths=lengths)
    np.testing.assert_allclose(noise[:, :2, 0].mean(axis=0), [3, 4], atol=0.2)
    assert np.allclose(noise[:, 2, 0], 7)  # one sequence reaches step 2: no spread there
    assert np.all(noise[:, 3, 0] == 0)  # no sequence reaches step 3
    with pytest.raises(ValueError, match="real needs >= 2 sequences"):
        harness.noise_like(real[:1], 5)


def test_nearest_distances_are_rms_differences_to_the_closest_sequence():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(20, 6, 2)).astype(np.float32)
    queries = rng.normal(size=(5, 6, 2)).astype(np.float32)
    got = harness.nearest_distances(reference, queries)
    brute = np.sqrt(((queries[:, None] - reference[None]) ** 2).mean(axis=(2, 3))).min(axis=1)
    np.testing.assert_allclose(got, brute, rtol=1e-5)
    assert np.allclose(harness.nearest_distances(reference, reference[:3]), 0)


def test_nearest_distances_never_read_padding():
    reference = np.zeros((2, 4, 1), dtype=np.float32)
    reference[1, :, 0] = [1, 1, 1, 1]
    query = np.array([[[1.0], [1.0], [np.nan], [1e20]]], dtype=np.float32)
    got = harness.nearest_distances(reference, query, query_lengths=np.array([2]))
    assert got[0] == pytest.approx(math.sqrt(2 / 4))  # the two missing steps differ by 1


def test_memorization_tells_a_copy_from_new_data(sines):
    train, held_out = sines
    copied = harness.memorization(train, train.copy(), held_out)
    assert copied["generated_median"] == 0 and copied["ratio"] == 0
    assert copied["copied_share"] == 1
    fresh = harness.memorization(train, held_out, held_out)
    assert fresh["ratio"] == 1 and fresh["copied_share"] == 0
    assert fresh["held_out_median"] > 0


def test_reference_rows_span_the_scale():
    data = make_sines(256, seq_len=12, n_channels=3, seed=0)
    strong = {"iterations": 200, "batch_size": 64, "hidden_size": 8, "lr": 1e-2}
    rows = harness.reference_rows(data[:128], data[128:], runs=2, predictive=False,
                                  discriminative_options=strong)  # fmt: skip
    assert list(rows) == ["real vs real", "training set copied",
                          "noise with the data's mean and spread"]  # fmt: skip
    noise = rows["noise with the data's mean and spread"]["discriminative"].mean
    for row in ("real vs real", "training set copied"):
        assert set(rows[row]) == {"discriminative"}
        assert rows[row]["discriminative"].mean < noise  # noise is told apart, real is not


def test_reference_rows_computes_the_rows_asked_for(sines):
    train, held_out = sines
    rows = harness.reference_rows(train, held_out, runs=2, rows=["real vs real"], **FAST)
    assert list(rows) == ["real vs real"] and set(rows["real vs real"]) == {
        "discriminative", "predictive"}
    assert rows["real vs real"] == harness.repeated_scores(train, held_out, runs=2, **FAST)
    with pytest.raises(ValueError, match="rows must be one or more of"):
        harness.reference_rows(train, held_out, rows="real vs real")


def test_score_rows_scores_each_row_as_repeated_scores_does(sines):
    real, generated = sines
    rows = {"a": generated, "b": (generated[::-1] * 0.9, None), "c": real[::-1]}
    table = harness.score_rows(real, rows, runs=2, seed=4, predictive=["b"], **FAST)
    assert list(table) == ["a", "b", "c"]
    assert set(table["a"]) == {"discriminative"} and set(table["b"]) == {
        "discriminative", "predictive"}
    n_test = 2 * (len(real) - round(0.8 * len(real)))
    for name, value in rows.items():
        data = value[0] if isinstance(value, tuple) else value
        alone = harness.repeated_scores(real, data, runs=2, seed=4, predictive=name == "b",
                                        **FAST)  # fmt: skip
        np.testing.assert_allclose(table[name]["discriminative"].values,
                                   alone["discriminative"].values, atol=1 / n_test + 1e-6)
        if name == "b":
            np.testing.assert_allclose(table[name]["predictive"].values,
                                       alone["predictive"].values, rtol=1e-4)
    with pytest.raises(ValueError, match="predictive names rows that are not in rows"):
        harness.score_rows(real, rows, predictive=["d"])
    with pytest.raises(ValueError, match="rows must hold at least one row"):
        harness.score_rows(real, {})


def test_reference_sets_are_the_stand_ins(sines):
    train, held_out = sines
    sets = harness.reference_sets(train, held_out, seed=3)
    assert list(sets) == list(harness.REFERENCE_ROWS)
    assert sets["real vs real"][0] is held_out and sets["training set copied"][0] is train
    np.testing.assert_array_equal(sets[harness.REFERENCE_ROWS[2]][0],
                                  harness.noise_like(train, len(train), 3))


def test_score_table_sets_measured_beside_published_rows():
    measured = {"ours": {"discriminative": harness.estimate([0.01, 0.03])}}
    table = harness.score_table(measured, {"theirs": {"discriminative": (0.011, 0.008),
                                                      "predictive": (0.093, None)}})  # fmt: skip
    assert table.loc["ours", "discriminative"] == str(measured["ours"]["discriminative"])
    assert table.loc["theirs", "discriminative"] == "0.011 ± 0.008"
    assert table.loc["theirs", "predictive"] == "0.093"
    assert table.loc["ours", "predictive"] == ""
    assert list(table["source"]) == ["measured here", "published"]
    assert set(harness.PUBLISHED_SINES["TimeGAN (Yoon et al., 2019)"]) == {
        "discriminative", "predictive"}
