import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tvae_lib import sequences
from tvae_lib import sequences as sequences_module


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


def _ragged4(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(3.0, 2.0, size=(int(n), 4)).astype(np.float32) for n in (5, 9, 2, 7)]


def test_scaler_matches_sklearn_on_the_stacked_real_steps():
    from sklearn.preprocessing import StandardScaler

    sequences = _ragged4()
    scaler = sequences_module.SequenceScaler().fit(sequences)
    reference = StandardScaler().fit(np.concatenate(sequences))
    np.testing.assert_allclose(scaler.mean_, reference.mean_, rtol=1e-6)
    np.testing.assert_allclose(scaler.scale_, reference.scale_, rtol=1e-6)
    scaled = scaler.transform(sequences)
    np.testing.assert_allclose(np.concatenate(scaled),
                               reference.transform(np.concatenate(sequences)), atol=1e-5)
    for original, back in zip(sequences, scaler.inverse_transform(scaled), strict=True):
        np.testing.assert_allclose(back, original, atol=1e-5)


def test_scaler_on_a_padded_array_ignores_and_keeps_the_padding():
    sequences = _ragged4()
    x, lengths = sequences_module.pad_sequences(sequences, pad_value=np.float32(1e30))
    by_list = sequences_module.SequenceScaler().fit(sequences)
    by_array = sequences_module.SequenceScaler().fit(x, lengths)
    np.testing.assert_allclose(by_array.mean_, by_list.mean_)
    scaled = by_array.transform(x, lengths)
    assert scaled[2, 2:].min() == np.float32(1e30)  # padding untouched
    np.testing.assert_allclose(scaled[1, :9], by_list.transform(sequences)[1], atol=1e-6)
    back = by_array.inverse_transform(torch.from_numpy(scaled), lengths)
    np.testing.assert_allclose(back[0, :5], sequences[0], atol=1e-5)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s: s.transform([np.zeros((3, 4))]), ValueError, "not fitted"),
        (lambda s: s.fit(_ragged4()).transform([np.zeros((3, 2))]), ValueError, "F=4 channels"),
        (lambda s: s.fit(np.zeros((2, 5, 4)), lengths=[0, 5]), ValueError, r"lengths must lie in \[1, T=5\]"),
        (lambda s: s.fit(np.zeros((2, 5, 4)), lengths=[2.0, 5.0]), TypeError, "integers"),
        (lambda s: s.fit([np.full((3, 4), np.nan)]), ValueError, "NaN or inf"),
        (lambda s: s.fit(np.zeros((5, 4)), lengths=[5]), ValueError, r"\(N, T, F\) array"),
    ],
)  # fmt: skip
def test_scaler_bad_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call(sequences_module.SequenceScaler())


def test_constant_channels_keep_unit_scale():
    scaler = sequences_module.SequenceScaler().fit([np.ones((4, 2))])
    np.testing.assert_array_equal(scaler.scale_, [1.0, 1.0])


def test_random_crops_are_windows_of_the_sequences_with_fresh_lengths():
    series = [np.arange(40, dtype=np.float32).reshape(20, 2) + 100 * i for i in range(3)]
    crops = sequences_module.RandomCrops(series, [0, 1, 2], min_len=5, max_len=12,
                                         crops_per_sequence=4, seed=0)  # fmt: skip
    assert len(crops) == 12
    lengths = set()
    for index in range(len(crops)):
        x, label = crops[index]
        assert label == index // 4 and 5 <= len(x) <= 12
        start = int(x[0, 0] - 100 * label) // 2
        np.testing.assert_array_equal(x.numpy(), series[label][start : start + len(x)])
        lengths.add(len(x))
    assert len(lengths) > 1
    batch = crops.collate([crops[i] for i in range(4)])
    assert batch.mask.sum(dim=1).tolist() == batch.lengths.tolist()
    again = sequences_module.RandomCrops(series, min_len=5, max_len=12, seed=0)
    assert len(again[0][0]) == len(sequences_module.RandomCrops(series, min_len=5, max_len=12, seed=0)[0][0])
    with pytest.raises(ValueError, match="max_len must be >= min_len=5"):
        sequences_module.RandomCrops(series, min_len=5, max_len=4)
    with pytest.raises(ValueError, match="min_len must be a positive int"):
        sequences_module.RandomCrops(series, min_len=0)
