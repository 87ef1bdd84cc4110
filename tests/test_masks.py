import pytest
import torch

from tvae_lib import masks


def test_causal_mask_5x5_literal():
    expected = torch.tensor(
        [
            [1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0],
            [1, 1, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    torch.testing.assert_close(masks.causal_mask(5), expected)


def test_causal_mask_matches_torch_convention_after_conversion():
    ours = masks.to_blocked(masks.causal_mask(6))
    theirs = torch.nn.Transformer.generate_square_subsequent_mask(6) == float("-inf")
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize(("size", "error"), [(0, ValueError), (-2, ValueError), (2.0, TypeError),
                                             (True, TypeError)])  # fmt: skip
def test_causal_mask_rejects_bad_size(size, error):
    with pytest.raises(error, match="size must be"):
        masks.causal_mask(size)


def test_padding_mask_literal():
    mask = masks.padding_mask(torch.tensor([3, 1, 4]), max_len=5)
    expected = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)
    torch.testing.assert_close(mask, expected)
    assert masks.padding_mask(torch.tensor([2, 4])).shape == (2, 4)


@pytest.mark.parametrize(
    "lengths, max_len, match",
    [
        (torch.tensor([[1, 2]]), None, "1-D integer"),
        (torch.tensor([1.0, 2.0]), None, "1-D integer"),
        (torch.tensor([], dtype=torch.long), None, "empty"),
        (torch.tensor([0, 2]), None, r"\[1, max_len"),
        (torch.tensor([3, 6]), 5, r"\[1, max_len=5\]"),
    ],
)
def test_padding_mask_rejects_bad_lengths(lengths, max_len, match):
    with pytest.raises(ValueError, match=match):
        masks.padding_mask(lengths, max_len)


def test_to_additive_values():
    additive = masks.to_additive(masks.causal_mask(3))
    assert additive[0, 0] == 0 and additive[0, 1] == float("-inf")
    torch.testing.assert_close(additive, torch.nn.Transformer.generate_square_subsequent_mask(3))


def test_conversions_reject_float_masks():
    with pytest.raises(TypeError, match="bool"):
        masks.to_blocked(torch.zeros(2, 2))
    with pytest.raises(TypeError, match="bool"):
        masks.to_additive(torch.zeros(2, 2))


def test_merge_masks_shapes_and_values():
    attn = masks.causal_mask(3)  # (T, S)
    keys = torch.tensor([[True, True, False], [True, True, True]])  # (B, S)
    merged = masks.merge_masks(attn, keys)
    assert merged.shape == (2, 1, 3, 3)
    torch.testing.assert_close(merged[0, 0], attn & keys[0])
    assert masks.merge_masks(None, None) is None
    assert masks.merge_masks(attn, None) is attn
    assert masks.merge_masks(None, keys).shape == (2, 1, 1, 3)
    assert masks.merge_masks(attn.expand(2, 3, 3), keys).shape == (2, 1, 3, 3)


def test_merge_masks_rejects_bad_ranks():
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(T, S\)"):
        masks.merge_masks(torch.ones(3, dtype=torch.bool), None)
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(B, S\)"):
        masks.merge_masks(None, torch.ones(3, dtype=torch.bool))


def test_masked_mean_ignores_padding():
    x = torch.tensor([[[1.0], [3.0], [-0.1]], [[2.0], [4.0], [6.0]]])  # (B=2, T=3, F=1)
    mask = masks.padding_mask(torch.tensor([2, 3]), max_len=3)
    torch.testing.assert_close(masks.masked_mean(x, mask), torch.tensor([[2.0], [4.0]]))
    # The plain mean averages the padding value in:
    torch.testing.assert_close(x.mean(dim=1)[0], torch.tensor([3.9 / 3]))


def test_masked_mean_with_full_mask_is_the_mean():
    x = torch.randn(4, 5, 3)
    full = torch.ones(4, 5, dtype=torch.bool)
    torch.testing.assert_close(masks.masked_mean(x, full), x.mean(dim=1))


def test_masked_mse_counts_selected_steps_only():
    prediction = torch.zeros(2, 3, 2)
    target = torch.tensor([[[1.0, 1.0], [3.0, 1.0], [9.0, 9.0]], [[2.0, 2.0], [0.0, 0.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    # Selected squared errors per step: 1, 5, 4 -> mean 10 / 3.
    torch.testing.assert_close(masks.masked_mse(prediction, target, mask), torch.tensor(10.0 / 3))
    full = torch.ones(2, 3, dtype=torch.bool)
    torch.testing.assert_close(
        masks.masked_mse(prediction, target, full), torch.nn.functional.mse_loss(prediction, target)
    )


def test_masked_losses_reject_bad_input():
    x = torch.zeros(2, 3, 1)
    with pytest.raises(ValueError, match=r"mask must have shape \(B, T\) = \(2, 3\).*got \(2, 4\)"):
        masks.masked_mean(x, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        masks.masked_mean(x, torch.ones(2, 3))
    with pytest.raises(ValueError, match="no real step"):
        masks.masked_mean(x, torch.tensor([[True, False, False], [False, False, False]]))
    with pytest.raises(ValueError, match="same shape"):
        masks.masked_mse(x, torch.zeros(2, 3, 2), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="selects no step"):
        masks.masked_mse(x, x, torch.zeros(2, 3, dtype=torch.bool))


def test_random_hidden_steps_counts_and_padding():
    valid = masks.padding_mask(torch.tensor([10, 4, 1]), max_len=10)
    hidden = masks.random_hidden_steps(valid, ratio=0.3)
    assert hidden.sum(dim=1).tolist() == [3, 1, 1]  # round(3.0), round(1.2), at least 1
    assert not (hidden & ~valid).any()  # never a padded step


def test_random_hidden_steps_is_reproducible_and_spread():
    valid = torch.ones(200, 8, dtype=torch.bool)
    first = masks.random_hidden_steps(valid, 0.25, torch.Generator().manual_seed(1))
    again = masks.random_hidden_steps(valid, 0.25, torch.Generator().manual_seed(1))
    torch.testing.assert_close(first, again)
    per_step = first.float().mean(dim=0)  # each step hidden about a quarter of the time
    assert per_step.min() > 0.15 and per_step.max() < 0.35


@pytest.mark.parametrize("ratio", [0.0, 1.5, -0.2])
def test_random_hidden_steps_rejects_bad_ratio(ratio):
    with pytest.raises(ValueError, match="ratio must lie in"):
        masks.random_hidden_steps(torch.ones(2, 3, dtype=torch.bool), ratio)


def test_random_hidden_steps_rejects_bad_valid():
    with pytest.raises(ValueError, match=r"valid must have shape \(B, T\)"):
        masks.random_hidden_steps(torch.ones(3, dtype=torch.bool), 0.5)
    with pytest.raises(ValueError, match="no real step"):
        masks.random_hidden_steps(torch.tensor([[True, False], [False, False]]), 0.5)
    with pytest.raises(TypeError, match="bool"):
        masks.random_hidden_steps(torch.ones(2, 3), 0.5)
