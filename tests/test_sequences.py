import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tvae_lib import sequences, storage


def _ragged(n_features: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=(length, n_features)) for length in (4, 1, 6)]


def test_pad_sequences_values_and_lengths():
    seqs = _ragged()
    x, lengths = sequences.pad_sequences(seqs, pad_value=-1.0)
    assert x.shape == (3, 6, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(lengths, [4, 1, 6])
    np.testing.assert_allclose(x[0, :4], seqs[0].astype(np.float32))
    assert (x[0, 4:] == -1).all() and (x[1, 1:] == -1).all()
    assert sequences.pad_sequences(seqs, max_len=8)[0].shape == (3, 8, 2)
    with pytest.raises(ValueError, match="does not fit max_len=5"):
        sequences.pad_sequences(seqs, max_len=5)


@pytest.mark.parametrize("n_features", [1, 3, 7])
def test_dataloader_batches_any_channel_count(n_features):
    dataset = sequences.SequenceDataset(_ragged(n_features), labels=[0, 1, 2], pad_value=-0.5)
    loader = DataLoader(dataset, batch_size=2, collate_fn=dataset.collate)
    batches = list(loader)
    first = batches[0]
    assert first.x.shape == (2, 4, n_features)  # padded to the batch's longest, not the data's
    torch.testing.assert_close(first.lengths, torch.tensor([4, 1]))
    torch.testing.assert_close(first.mask, torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]]).bool())
    assert (first.x[1, 1:] == -0.5).all()
    torch.testing.assert_close(first.labels, torch.tensor([0, 1]))
    assert batches[1].x.shape == (1, 6, n_features)


def test_dataset_without_labels():
    dataset = sequences.SequenceDataset(_ragged())
    assert dataset[0][1] == -1
    batch = dataset.collate([dataset[0], dataset[2]])
    assert batch.labels is None and batch.x.shape == (2, 6, 2)


def test_from_padded_round_trip():
    x, lengths = sequences.pad_sequences(_ragged(), pad_value=9.0)
    dataset = sequences.SequenceDataset.from_padded(x, lengths)
    assert [len(s) for s in dataset.sequences] == [4, 1, 6]
    with pytest.raises(ValueError, match=r"\(N, T, F\)"):
        sequences.SequenceDataset.from_padded(x[0], lengths)


def test_dataset_does_not_alias_caller_arrays():
    seqs = _ragged()
    dataset = sequences.SequenceDataset(seqs)
    seqs[0][:] = 0.0
    assert dataset[0][0].abs().sum() > 0


def test_single_2d_array_is_refused_not_split_into_rows():
    with pytest.raises(ValueError, match="wrap a single sequence in a list"):
        sequences.check_sequences(np.zeros((5, 3)))
    assert len(sequences.check_sequences(np.zeros((4, 5, 3)))) == 4


@pytest.mark.parametrize(
    "bad, match",
    [
        ([], "empty"),
        ([np.zeros(5)], r"\[0\] must have shape \(T_i, F\)"),
        ([np.zeros((0, 2))], r"T_i, F >= 1"),
        ([np.zeros((3, 2)), np.zeros((3, 4))], r"\[1\] has 4 channels but sequences\[0\] has 2"),
        ([np.array([["a", "b"]])], "numeric"),
        ([np.array([[1.0, np.nan]])], "NaN or inf"),
        ([np.array([[1.0, np.inf]])], "NaN or inf"),
    ],
)
def test_bad_sequences_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        sequences.SequenceDataset(bad)


def test_bad_labels_raise():
    with pytest.raises(ValueError, match="labels must be 3 integers"):
        sequences.SequenceDataset(_ragged(), labels=[0, 1])
    with pytest.raises(ValueError, match="labels must be 3 integers"):
        sequences.SequenceDataset(_ragged(), labels=[0.0, 1.0, 2.0])


def test_collate_empty_batch_raises():
    with pytest.raises(ValueError, match="empty batch"):
        sequences.collate_padded([])


def test_npz_round_trip_and_no_pickle(tmp_path):
    path = storage.save_npz(
        tmp_path / "sub" / "a.npz", x=np.arange(6.0).reshape(2, 3), n=np.int64(3)
    )
    loaded = storage.load_npz(path, required=["x"])
    np.testing.assert_array_equal(loaded["x"], np.arange(6.0).reshape(2, 3))
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary file left behind
    with pytest.raises(ValueError, match="dtype object"):
        storage.save_npz(tmp_path / "b.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="at least one"):
        storage.save_npz(tmp_path / "c.npz")
    with pytest.raises(ValueError, match=r"end in \.npz"):
        storage.save_npz(tmp_path / "d.npy", x=np.zeros(1))
    with pytest.raises(ValueError, match="lacks the arrays"):
        storage.load_npz(path, required=["y"])


def test_load_npz_refuses_pickled_objects(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        storage.load_npz(path)


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = storage.save_npz(tmp_path / "keep.npz", x=np.ones(3))

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        storage.save_npz(path, x=np.zeros(3))
    monkeypatch.undo()
    np.testing.assert_array_equal(storage.load_npz(path)["x"], np.ones(3))
    assert list(tmp_path.iterdir()) == [path]
