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


@pytest.mark.parametrize("size", [0, -2, 2.0, True])
def test_causal_mask_rejects_bad_size(size):
    with pytest.raises(ValueError, match="size"):
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
