"""Tests for tvae_lib.plotting: what each figure draws, padding left out, bad input refused."""

from __future__ import annotations

import ast
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tvae_lib import plotting  # noqa: E402
from tvae_lib.data import CLASS_NAMES  # noqa: E402
from tvae_lib.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    """Close every figure a test opened."""
    yield
    plt.close("all")


@pytest.fixture
def cycles() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Twelve (T=20, F=3) cycles, three per class, padded with -0.1 after their lengths."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 20, 3)).astype(np.float32)
    lengths = np.array([20, 15, 10, 12, 20, 8, 9, 20, 11, 14, 20, 5])
    for i, n in enumerate(lengths):
        x[i, n:] = -0.1
    return x, lengths, np.repeat(np.arange(4), 3)


def _colour(line) -> str:
    return mcolors.to_hex(line.get_color())


# plot_cycles


def test_plot_cycles_draws_a_column_per_class_in_its_colour(cycles):
    x, lengths, labels = cycles
    fig = plotting.plot_cycles(x, lengths, labels, n_per_class=2, title="cycles")
    grid = np.array(fig.axes).reshape(3, 4)
    assert [ax.get_title() for ax in grid[0]] == list(CLASS_NAMES)
    for k in range(4):
        for ax in grid[:, k]:
            assert len(ax.get_lines()) == 2
            assert {_colour(line) for line in ax.get_lines()} == {plotting.PALETTE[k]}
    assert grid[-1, 0].get_xlabel() == "time (s)"
    assert grid[0, 0].get_ylabel() == "position\n(fraction open)"
    assert fig.get_suptitle() == "cycles"


def test_plot_cycles_leaves_the_padding_out(cycles):
    x, lengths, _ = cycles
    fig = plotting.plot_cycles(torch.from_numpy(x), torch.from_numpy(lengths))
    assert len(fig.axes) == 3
    drawn = [len(line.get_xdata()) for line in fig.axes[0].get_lines()]
    assert drawn == lengths.tolist()
    assert all(-0.1 not in line.get_ydata() for ax in fig.axes for line in ax.get_lines())
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_xdata()[-1], 1.9)  # 10 Hz


def test_plot_cycles_takes_all_of_a_small_class_and_draws_into_given_axes(cycles):
    x, _, labels = cycles
    fig, axes = plt.subplots(2, 4)
    out = plotting.plot_cycles(x[:, :, :2], labels=labels, n_per_class=10, axes=axes,
                               channel_names=("a", "b"), channel_units=None, sample_rate_hz=None)
    assert out is fig
    assert [len(ax.get_lines()) for ax in axes[0]] == [3, 3, 3, 3]
    assert axes[0, 0].get_ylabel() == "a" and axes[1, 0].get_xlabel() == "step t"


def test_plot_cycles_wants_one_axes_per_channel_and_column(cycles):
    _, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="3 x 1 = 3 Axes, got 2"):
        plotting.plot_cycles(cycles[0], axes=axes)


def test_plot_cycles_same_seed_same_picks(cycles):
    x, _, labels = cycles
    first = plotting.plot_cycles(x, labels=labels, n_per_class=1, seed=3)
    second = plotting.plot_cycles(x, labels=labels, n_per_class=1, seed=3)
    for a, b in zip(first.axes, second.axes, strict=True):
        np.testing.assert_array_equal(a.get_lines()[0].get_ydata(), b.get_lines()[0].get_ydata())


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"x": np.zeros((5, 3))}, ValueError),
        ({"x": [[[0.0]]]}, TypeError),
        ({"x": np.zeros((2, 4, 3), dtype=np.int64)}, TypeError),
        ({"lengths": np.array([5, 2])}, ValueError),
        ({"lengths": np.array([2.0, 2.0])}, TypeError),
        ({"labels": np.array([0, 4])}, ValueError),
        ({"labels": np.array([0, 1, 2])}, ValueError),
        ({"labels": np.array([0.0, 1.0])}, TypeError),
        ({"labels": np.array([0, 1]), "n_per_class": 0}, ValueError),
        ({"channel_names": ("a", "b")}, ValueError),
        ({"channel_units": "A"}, TypeError),
        ({"sample_rate_hz": 0}, ValueError),
        ({"axes": [None, None, None]}, TypeError),
    ],
)
def test_plot_cycles_rejects_bad_input(kwargs, error):
    kwargs = {"x": np.zeros((2, 4, 3), dtype=np.float32)} | kwargs
    with pytest.raises(error):
        plotting.plot_cycles(**kwargs)


# plot_overlay


def test_plot_overlay_draws_the_reference_and_each_other(cycles):
    x, lengths, labels = cycles
    others = {"model": x + 1, "baseline": torch.from_numpy(x - 1)}
    fig = plotting.plot_overlay(x, others, [0, 5, 11], lengths=lengths, labels=labels)
    grid = np.array(fig.axes).reshape(3, 3)
    assert [ax.get_title() for ax in grid[0]] == ["normal", "obstruction", "sensor fault"]
    for col, i in enumerate([0, 5, 11]):
        for ax in grid[:, col]:
            lines = ax.get_lines()
            assert [line.get_label() for line in lines] == ["original", "model", "baseline"]
            assert all(len(line.get_xdata()) == lengths[i] for line in lines)
            assert _colour(lines[0]) == "#000000"
    assert grid[0, 0].get_legend() is None  # one legend below the panels, off the curves
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["original", "model", "baseline"]
    drawn_into = plotting.plot_overlay(x, others, [0], axes=plt.subplots(3, 1)[1])
    assert not drawn_into.legends and drawn_into.axes[0].get_legend() is not None
    assert grid[2, 0].get_ylabel() == "speed\n(widths/s)" and grid[2, 1].get_ylabel() == ""


def test_plot_overlay_shows_chosen_channels_only(cycles):
    x, _, _ = cycles
    fig = plotting.plot_overlay(x, {"twice": 2 * x}, [1, 2], channels=[1], title="current")
    assert len(fig.axes) == 2
    assert fig.axes[0].get_ylabel() == "current\n(A)"
    np.testing.assert_array_equal(fig.axes[1].get_lines()[1].get_ydata(), 2 * x[2, :, 1])


@pytest.mark.parametrize(
    ("others", "indices", "error"),
    [
        ({"a": np.zeros((12, 20, 3), dtype=np.float32)}, [12], ValueError),
        ({"a": np.zeros((12, 20, 3), dtype=np.float32)}, [], ValueError),
        ({"a": np.zeros((12, 19, 3), dtype=np.float32)}, [0], ValueError),
        ({"a": np.zeros((2, 20, 3), dtype=np.float32)}, [5], ValueError),
        ({"a": np.zeros((12, 20), dtype=np.float32)}, [0], ValueError),
        ({str(k): np.zeros((12, 20, 3), dtype=np.float32) for k in range(4)}, [0], ValueError),
        ({"a": np.zeros((12, 20, 3), dtype=np.float32)}, [True], TypeError),
    ],
)
def test_plot_overlay_rejects_bad_input(cycles, others, indices, error):
    with pytest.raises(error):
        plotting.plot_overlay(cycles[0], others, indices)


# plot_history


def test_plot_history_one_run_draws_training_and_validation():
    history = History({"loss": [3.0, 2.0, 1.0], "val_loss": [3.5, 2.5, 1.5],
                       "acc": [0.1, 0.5, 0.9]})
    fig = plotting.plot_history(history, ("loss", "acc"), log=[True, False], titles=("L", "A"),
                                ylabels=("nats", "fraction"), train_label="train")
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["train", "validation"]
    assert [line.get_label() for line in acc_ax.get_lines()] == ["train"]
    np.testing.assert_array_equal(loss_ax.get_lines()[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(loss_ax.get_lines()[1].get_ydata(), [3.5, 2.5, 1.5])
    assert loss_ax.get_yscale() == "log" and acc_ax.get_yscale() == "linear"
    assert (loss_ax.get_title(), loss_ax.get_xlabel(), acc_ax.get_ylabel()) == (
        "L", "epoch", "fraction")


def test_plot_history_several_runs_draw_one_curve_each():
    runs = {"plain": History({"val_em": [0.1, 0.2]}), "peeky": {"val_em": [0.3, 0.6]}}
    _, ax = plt.subplots()
    fig = plotting.plot_history(runs, "val_em", axes=[ax], marker="o")
    assert fig is ax.figure
    assert [line.get_label() for line in ax.get_lines()] == ["plain", "peeky"]
    assert ax.get_lines()[0].get_marker() == "o"


def test_plot_history_labels_a_lone_validation_curve_as_validation():
    fig = plotting.plot_history({"val_loss": [1.0, 0.5]}, "val_loss")
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["validation"]


@pytest.mark.parametrize(
    ("history", "kwargs", "error"),
    [
        (History({"loss": [1.0]}), {"keys": ("kl",)}, ValueError),
        (History({"loss": []}), {}, ValueError),
        ([1.0, 2.0], {}, TypeError),
        ({"run": History({"loss": [1.0]}), "other": 3}, {}, TypeError),
        (History({"loss": [1.0]}), {"log": [True, False]}, ValueError),
        (History({"loss": [1.0]}), {"log": 1}, TypeError),
        (History({"loss": [1.0]}), {"keys": ()}, ValueError),
        (History({"loss": [1.0]}), {"titles": ("a", "b")}, ValueError),
    ],
)
def test_plot_history_rejects_bad_input(history, kwargs, error):
    with pytest.raises(error):
        plotting.plot_history(history, **kwargs)


def test_plot_history_names_the_logged_metrics():
    with pytest.raises(ValueError, match=r"'kl'.*\['loss'\]"):
        plotting.plot_history(History({"loss": [1.0]}), "kl")


# plot_latent


def test_plot_latent_two_dimensions_one_collection_per_class(cycles):
    _, _, labels = cycles
    z = torch.randn(12, 2)
    fig = plotting.plot_latent(z, labels, title="codes")
    ax = fig.axes[0]
    assert len(ax.collections) == 4
    assert sum(len(c.get_offsets()) for c in ax.collections) == 12
    for k, collection in enumerate(ax.collections):
        assert mcolors.to_hex(collection.get_facecolor()[0]) == plotting.PALETTE[k]
        np.testing.assert_allclose(collection.get_offsets(), z[labels == k].numpy())
    assert ax.get_xlabel() == "$\\mu_1$ (latent units)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(CLASS_NAMES)


def test_plot_latent_projects_by_pca_and_says_so():
    z = np.random.default_rng(0).normal(size=(30, 5))
    fig = plotting.plot_latent(z, np.zeros(30, dtype=np.int64), name="mu")
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("PC 1 of mu (") and ax.get_ylabel().startswith("PC 2 of mu")
    assert "latent unit" not in ax.get_xlabel() + ax.get_ylabel()
    assert len(ax.collections) == 1 and len(ax.collections[0].get_offsets()) == 30


def test_plot_latent_without_labels_and_many_classes():
    fig = plotting.plot_latent(np.ones((4, 2)), units=None)
    assert len(fig.axes[0].collections) == 1 and fig.axes[0].get_legend() is None
    assert fig.axes[0].get_ylabel() == "$\\mu_2$"
    digits = plotting.plot_latent(np.ones((10, 2)), np.arange(10), [str(d) for d in range(10)])
    assert len(digits.axes[0].collections) == 10


@pytest.mark.parametrize(
    ("z", "labels", "error"),
    [
        (np.zeros((4, 1)), None, ValueError),
        (np.zeros(4), None, ValueError),
        (np.zeros((4, 2), dtype=np.int64), None, TypeError),
        (np.zeros((4, 2)), np.zeros(3, dtype=np.int64), ValueError),
        (np.zeros((4, 2)), np.full(4, 7), ValueError),
    ],
)
def test_plot_latent_rejects_bad_input(z, labels, error):
    with pytest.raises(error):
        plotting.plot_latent(z, labels)


# plot_heatmap


def test_plot_heatmap_draws_one_mesh_with_annotations():
    weights = torch.softmax(torch.randn(3, 4), dim=-1)
    fig = plotting.plot_heatmap(weights, annot=True, cbar=False, title="w", xlabel="key",
                                ylabel="query", xticklabels=list("abcd"))
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and len(ax.collections) == 1
    assert len(ax.texts) == 12
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("w", "key", "query")
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcd")


def test_plot_heatmap_integers_marks_the_end_of_real_steps():
    counts = np.array([[5, 1], [0, 7]])
    fig = plotting.plot_heatmap(counts, annot=True, fmt="d", cbar_label="cycles")
    assert [t.get_text() for t in fig.axes[0].texts] == ["5", "1", "0", "7"]
    assert fig.axes[1].get_ylabel() == "cycles"  # the colour bar
    batch = plotting.plot_heatmap(np.zeros((3, 10)), lengths=np.array([10, 4, 7]))
    ends = [line.get_xdata()[0] for line in batch.axes[0].get_lines()]
    assert ends == [10, 4, 7]


@pytest.mark.parametrize(
    ("matrix", "lengths", "error"),
    [
        (np.zeros(3), None, ValueError),
        (np.zeros((0, 3)), None, ValueError),
        (np.zeros((2, 2), dtype=bool), None, TypeError),
        ([[0.0, 1.0]], None, TypeError),
        (np.zeros((2, 3)), np.array([1, 4]), ValueError),
        (np.zeros((2, 3)), np.array([1, 2, 3]), ValueError),
    ],
)
def test_plot_heatmap_rejects_bad_input(matrix, lengths, error):
    with pytest.raises(error):
        plotting.plot_heatmap(matrix, lengths=lengths)


def test_no_other_module_imports_plotting():
    for path in Path(plotting.__file__).parent.glob("*.py"):
        if path.name == "plotting.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any(name.endswith("plotting") for name in names), path.name
