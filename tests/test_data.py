import time

import numpy as np
import pytest

from tvae_lib import data


@pytest.fixture(scope="module")
def cycles() -> data.DoorCycles:
    return data.make_door_cycles()


@pytest.fixture(scope="module")
def variable() -> data.DoorCycles:
    return data.make_door_cycles(variable_length=True)


def test_default_shapes_and_dtypes(cycles):
    assert cycles.x.shape == (2570, 109, 3) and cycles.x.dtype == np.float32
    assert cycles.labels.shape == (2570,) and cycles.labels.dtype == np.int64
    assert (cycles.lengths == 109).all()
    assert np.isfinite(cycles.x).all()
    assert len(data.CHANNELS) == cycles.n_features == 3


def test_class_balance(cycles):
    counts = np.bincount(cycles.labels, minlength=len(data.CLASS_NAMES))
    np.testing.assert_array_equal(counts, [1028, 514, 514, 514])


def test_deterministic_for_a_seed_and_different_across_seeds():
    a, b = data.make_door_cycles(50, seed=3), data.make_door_cycles(50, seed=3)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.x, data.make_door_cycles(50, seed=4).x)


def test_generation_is_fast():
    start = time.perf_counter()
    data.make_door_cycles()
    assert time.perf_counter() - start < 2.0


def test_channels_are_physical(cycles):
    normal = cycles.x[cycles.labels == 0]
    position, current, speed = normal[..., 0], normal[..., 1], normal[..., 2]
    assert position.min() > -0.1 and position.max() < 1.1  # fraction open, plus sensor noise
    assert position[:, :3].mean() < 0.05 and position.max(axis=1).mean() > 0.9  # opens from shut
    assert speed.max(axis=1).mean() > 0.5 and speed.min(axis=1).mean() < -0.5  # opens and closes
    assert current.min() > -0.2 and current.max() < 3.0


def test_faults_leave_their_signature(cycles):
    x, y = cycles.x, cycles.labels
    peak_current = x[..., 1].max(axis=1)
    assert np.median(peak_current[y == 1]) > 1.5 * np.median(peak_current[y == 0])  # stall spike
    moving_current = (x[..., 1] * (np.abs(x[..., 2]) > 0.3)).sum(1) / (np.abs(x[..., 2]) > 0.3).sum(
        1
    )
    assert moving_current[y == 2].mean() > moving_current[y == 0].mean() + 0.2  # friction
    assert x[y == 1, -1, 0].mean() > 0.9  # an obstructed door ends open
    assert x[y == 0, -1, 0].mean() < 0.05  # a normal door ends closed
    jumps = np.abs(np.diff(x[..., 0], axis=1)).max(axis=1)
    flat = (np.abs(np.diff(x[..., 0], axis=1)) == 0).sum(axis=1)
    sensor = (jumps > 0.5) | (flat >= 9)
    assert sensor[y == 3].mean() > 0.95 and sensor[y == 0].mean() < 0.02


def test_split_sizes_and_stratification(cycles):
    train, val = data.train_val_split(cycles)
    assert (len(train), len(val)) == (1798, 772)
    train_share = np.bincount(train.labels) / len(train)
    val_share = np.bincount(val.labels) / len(val)
    np.testing.assert_allclose(train_share, val_share, atol=0.01)
    rows = {arr.tobytes() for arr in train.x} & {arr.tobytes() for arr in val.x}
    assert not rows  # no cycle in both


def test_load_door_cycles_is_the_standard_split(cycles):
    train, val = data.load_door_cycles()
    ref_train, ref_val = data.train_val_split(cycles)
    np.testing.assert_array_equal(train.x, ref_train.x)
    np.testing.assert_array_equal(val.labels, ref_val.labels)



@pytest.mark.parametrize("variable_length", [False, True])
def test_door_loaders_normal_only_keep_the_normal_cycles(variable_length):
    train, val = data.load_door_cycles(variable_length=variable_length)
    loaders = data.door_loaders(variable_length, batch_size=512, normal_only=True)
    for loader, cycles in zip(loaders, (train, val), strict=True):
        labels = [batch[1] if not variable_length else batch.labels for batch in loader]
        labels = np.concatenate([np.asarray(batch) for batch in labels])
        assert (labels == 0).all() and len(labels) == (cycles.labels == 0).sum()

def test_variable_length_mode(variable):
    lengths = variable.lengths
    assert lengths.min() >= 45 and lengths.max() <= 109 and len(np.unique(lengths)) > 20
    steps = np.arange(109)[None, :]
    padded = steps >= lengths[:, None]
    assert (variable.x[padded] == np.float32(-0.1)).all()
    assert (variable.x[~padded] != np.float32(-0.1)).mean() > 0.99
    normal = variable.subset(variable.labels == 0)
    last = normal.x[np.arange(len(normal)), normal.lengths - 1, 0]
    assert np.abs(last).max() < 0.1  # a normal cycle ends once the door is shut


def test_dataset_view_of_variable_cycles(variable):
    dataset = variable.dataset()
    assert len(dataset) == len(variable)
    x, label = dataset[5]
    assert x.shape == (variable.lengths[5], 3) and label == variable.labels[5]


def test_npz_round_trip(tmp_path, variable):
    path = tmp_path / "door.npz"
    variable.save(path)
    loaded = data.DoorCycles.load(path)
    np.testing.assert_array_equal(loaded.x, variable.x)
    np.testing.assert_array_equal(loaded.lengths, variable.lengths)
    np.testing.assert_array_equal(loaded.labels, variable.labels)
    assert loaded.pad_value == pytest.approx(-0.1)


def test_load_rejects_incomplete_file(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros((2, 3, 1), np.float32))
    with pytest.raises(ValueError, match="lacks the arrays"):
        data.DoorCycles.load(path)


@pytest.mark.parametrize(
    "x, labels, lengths, match",
    [
        (
            np.zeros((2, 5), np.float32),
            np.zeros(2, np.int64),
            np.ones(2, np.int64),
            r"shape \(N, T, F\)",
        ),
        (
            np.zeros((0, 5, 3), np.float32),
            np.zeros(0, np.int64),
            np.ones(0, np.int64),
            r"shape \(N, T, F\)",
        ),
        (np.zeros((2, 5, 3)), np.zeros(2, np.int64), np.ones(2, np.int64), "float32"),
        (
            np.full((2, 5, 3), np.nan, np.float32),
            np.zeros(2, np.int64),
            np.ones(2, np.int64),
            "NaN",
        ),
        (np.zeros((2, 5, 3), np.float32), np.zeros(3, np.int64), np.ones(2, np.int64), "labels"),
        (np.zeros((2, 5, 3), np.float32), np.zeros(2, np.int64), np.ones(2, np.int32), "lengths"),
        (
            np.zeros((2, 5, 3), np.float32),
            np.zeros(2, np.int64),
            np.full(2, 6, np.int64),
            r"\[1, 5\]",
        ),
    ],
)
def test_door_cycles_rejects_bad_arrays(x, labels, lengths, match):
    with pytest.raises(ValueError, match=match):
        data.DoorCycles(x, labels, lengths)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_cycles": 0}, "n_cycles"),
        ({"seq_len": 50}, "seq_len"),
        ({"class_fractions": (0.5, 0.5)}, "class_fractions"),
        ({"class_fractions": (0.5, 0.5, 0.5, -0.5)}, "class_fractions"),
    ],
)
def test_make_door_cycles_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.make_door_cycles(**kwargs)


def test_split_rejects_bad_size(cycles):
    with pytest.raises(ValueError, match="n_val"):
        data.train_val_split(cycles, n_val=len(cycles))
