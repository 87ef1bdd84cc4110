import math

import pytest
import torch

from tvae_lib.positional import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    sinusoidal_table,
)


def test_sinusoidal_table_literal_values():
    table = sinusoidal_table(3, 4)
    # Columns: sin(t), cos(t), sin(t / 100), cos(t / 100)  (10000^(2/4) = 100)
    expected = torch.tensor(
        [
            [0.0, 1.0, 0.0, 1.0],
            [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],
            [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)],
        ]
    )
    torch.testing.assert_close(table, expected)
    assert table.dtype == torch.float32


def test_sinusoidal_table_odd_width_and_range():
    table = sinusoidal_table(50, 5)
    assert table.shape == (50, 5)
    assert table.abs().max() <= 1.0
    torch.testing.assert_close(table[:, :4], sinusoidal_table(50, 4 + 1)[:, :4])
    # The last column of an odd width is a sine with frequency 10000^(-4/5).
    torch.testing.assert_close(table[:, 4], torch.sin(torch.arange(50.0) * 10000 ** (-4 / 5)))


def test_sinusoidal_codes_are_unit_pairs():
    # Each (sin, cos) pair lies on the unit circle: every code has squared norm D / 2.
    table = sinusoidal_table(100, 16)
    torch.testing.assert_close(table.pow(2).sum(-1), torch.full((100,), 8.0))


def test_relative_position_is_a_rotation():
    # PE[t + k] is a fixed linear map (a rotation per frequency pair) of PE[t].
    table = sinusoidal_table(40, 8).double()
    shift = 3
    solution = torch.linalg.lstsq(table[:-shift], table[shift:]).solution  # (D, D)
    torch.testing.assert_close(table[:-shift] @ solution, table[shift:], atol=1e-6, rtol=0)


@pytest.mark.parametrize("max_len, d_model, error", [(0, 4, ValueError), (4, 0, ValueError),
                                                     (2.0, 4, TypeError), (4, True, TypeError)])
def test_sinusoidal_table_rejects_bad_sizes(max_len, d_model, error):
    with pytest.raises(error, match="must be a positive int|must be an int"):
        sinusoidal_table(max_len, d_model)


def test_sinusoidal_module_adds_the_table():
    pe = SinusoidalPositionalEncoding(d_model=6, max_len=10)
    x = torch.randn(2, 7, 6)
    out = pe(x)
    assert out.shape == (2, 7, 6)
    torch.testing.assert_close(out - x, sinusoidal_table(7, 6).expand(2, 7, 6))
    assert pe.table.shape == (10, 6)
    assert "table" not in pe.state_dict()  # recomputed, never saved


def test_sinusoidal_module_differs_per_step_not_per_batch():
    # The seed's pitfall: a (T, B, D) module fed (B, T, D) adds the code of the batch index.
    pe = SinusoidalPositionalEncoding(d_model=4, max_len=8)
    added = pe(torch.zeros(3, 5, 4))
    torch.testing.assert_close(added[0], added[2])  # same codes for every sequence
    assert not torch.allclose(added[:, 0], added[:, 1])  # different codes per step


def test_dropout_only_in_training():
    pe = SinusoidalPositionalEncoding(d_model=8, max_len=4, dropout=0.5)
    x = torch.ones(2, 4, 8)
    assert (pe(x) == 0).any()
    pe.eval()
    torch.testing.assert_close(pe(x), x + pe.table)


@pytest.mark.parametrize("cls", [SinusoidalPositionalEncoding, LearnedPositionalEmbedding])
def test_rejects_bad_inputs(cls):
    pe = cls(d_model=4, max_len=5)
    with pytest.raises(ValueError, match=r"\(B, T, D=4\)"):
        pe(torch.zeros(5, 4))
    with pytest.raises(ValueError, match=r"got \(2, 3, 5\)"):
        pe(torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match="T=6 steps .* max_len=5"):
        pe(torch.zeros(2, 6, 4))
    with pytest.raises(TypeError, match="tensor"):
        pe([[0.0] * 4])


def test_learned_embedding_adds_its_rows():
    pe = LearnedPositionalEmbedding(d_model=4, max_len=9)
    x = torch.randn(3, 6, 4)
    torch.testing.assert_close(pe(x) - x, pe.table(torch.arange(6)).expand(3, 6, 4))
    assert pe.table.weight.std() < 0.05  # starts small
    assert "table.weight" in pe.state_dict()


def test_learned_embedding_gets_gradients_only_for_used_rows():
    pe = LearnedPositionalEmbedding(d_model=4, max_len=9)
    pe(torch.randn(2, 5, 4)).sum().backward()
    grad = pe.table.weight.grad
    torch.testing.assert_close(grad[:5], torch.full((5, 4), 2.0))
    torch.testing.assert_close(grad[5:], torch.zeros(4, 4))


def test_learned_embedding_rejects_bad_sizes():
    with pytest.raises(ValueError, match="max_len"):
        LearnedPositionalEmbedding(d_model=4, max_len=0)


@pytest.mark.parametrize("cls", [SinusoidalPositionalEncoding, LearnedPositionalEmbedding])
def test_repr_names_the_sizes(cls):
    assert "d_model=4, max_len=5" in repr(cls(d_model=4, max_len=5))
