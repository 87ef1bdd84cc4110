"""Bad input, class by class: a clear error naming the argument, or the correct result.

The other classes have their tests beside their module: checkpoints (truncated, corrupt,
foreign files, metadata types, temp files, permissions) in test_storage.py; decoder caches
used with another decoder or stale weights, and free-running decoding in float64 and bfloat16,
in test_decoding.py; labels out of range and bad recipe fields in test_recipes.py; metric
inputs in test_scores.py, test_anomaly.py and test_evaluation.py.
"""

import numpy as np
import pytest
import torch

from tvae_lib import masks, sequences
from tvae_lib.attention import MultiHeadAttention, scaled_dot_product_attention
from tvae_lib.tvae import TransformerVAE, TVAEConfig
from tvae_lib.vae import vae_loss

PADDING = [float("nan"), float("inf"), -float("inf"), 1e20, -3e38]
SMALL = dict(d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1, n_decoder_layers=1, max_len=12)


def _padded(value: float):
    torch.manual_seed(0)
    x = torch.randn(3, 12, 3)
    mask = masks.padding_mask(torch.tensor([12, 7, 4]), 12)
    return x.masked_fill(~mask[..., None], 0.0), x.masked_fill(~mask[..., None], value), mask


@pytest.mark.parametrize("value", PADDING)
@pytest.mark.parametrize("encoder", [("linear", "mean"), ("conv", "mean_max")])
def test_padding_never_reaches_a_real_step_of_the_tvae(value, encoder):
    clean, dirty, mask = _padded(value)
    model = TransformerVAE(TVAEConfig(**SMALL, embedding=encoder[0], pooling=encoder[1])).eval()
    outputs = []
    for x in (clean, dirty):
        model.zero_grad()
        x_hat, mu, logvar = model(x, mask)
        loss = vae_loss(x_hat, x, mu, logvar, mask=mask)["loss"]
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        outputs.append((x_hat[mask], mu, loss, grads))
    (a_hat, a_mu, a_loss, a_grads), (b_hat, b_mu, b_loss, b_grads) = outputs
    torch.testing.assert_close(b_hat, a_hat)
    torch.testing.assert_close(b_mu, a_mu)
    torch.testing.assert_close(b_loss, a_loss)
    for a, b in zip(a_grads, b_grads, strict=True):
        assert torch.isfinite(b).all()
        torch.testing.assert_close(b, a)
    with torch.no_grad():
        rebuilt = model.reconstruct(dirty, mask)
    assert torch.isfinite(rebuilt).all() and (rebuilt[~mask] == 0).all()


@pytest.mark.parametrize("value", PADDING)
def test_padding_never_reaches_attention_or_masked_averages(value):
    clean, dirty, mask = _padded(value)
    torch.testing.assert_close(masks.masked_mean(dirty, mask), masks.masked_mean(clean, mask))
    prediction = torch.zeros_like(dirty, requires_grad=True)
    loss = masks.masked_mse(prediction, dirty, mask)
    loss.backward()
    assert torch.isfinite(prediction.grad).all()
    torch.testing.assert_close(loss, masks.masked_mse(torch.zeros_like(clean), clean, mask))
    keys = torch.nn.functional.pad(dirty, (0, 1))  # (B, T, 4): Dh = 4
    clean_keys = torch.nn.functional.pad(clean, (0, 1))
    allowed = mask[:, None, :]  # (B, 1, S)
    out, weights = scaled_dot_product_attention(clean_keys, keys, keys, allowed)
    expected, _ = scaled_dot_product_attention(clean_keys, clean_keys, clean_keys, allowed)
    torch.testing.assert_close(out, expected)
    attention = MultiHeadAttention(4, 2).eval()
    got, _ = attention(clean_keys, keys, keys, key_padding_mask=mask)
    want, _ = attention(clean_keys, clean_keys, clean_keys, key_padding_mask=mask)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        # real steps that are not finite: refused, never propagated
        (lambda m: m.encode(torch.full((2, 5, 3), float("nan"))), ValueError, "NaN or inf at real steps"),
        # the wrong dtype: named, with the fix
        (lambda m: m.encode(torch.zeros(2, 5, 3, dtype=torch.float64)), TypeError, "x.to"),
        (lambda m: m.encode(torch.zeros(2, 5, 3, dtype=torch.int64)), TypeError, "dtype torch.int64"),
        (lambda m: m.encode(torch.zeros(0, 5, 3)), ValueError, "at least one sequence"),
        (lambda m: m.free_run(torch.zeros(2, 2), 13), ValueError, "max_len=12"),
        (lambda m: m.free_run(torch.zeros(2, 2), 3.0), TypeError, "length must be an int"),
        (lambda m: m.generate(2, lengths=torch.tensor([3, 0])), ValueError, r"lengths must lie in \[1, T=12\]"),
        (lambda m: m.generate(2, lengths=torch.tensor([3.0, 2.0])), TypeError, "integers"),
        (lambda m: m.generate(2, 5, lengths=torch.tensor([3, 2])), ValueError, "exactly one"),
        (lambda m: m.decode(torch.zeros(2, 2), torch.zeros(2, 5, 3), input_dropout=1.5), ValueError, "input_dropout"),
    ],
)  # fmt: skip
def test_tvae_bad_input_and_the_mode_survives(call, error, match):
    model = TransformerVAE(TVAEConfig(**SMALL)).train()
    with pytest.raises(error, match=match):
        call(model)
    assert model.training


@pytest.mark.parametrize("method", ["reconstruct", "generate"])
def test_a_failed_call_leaves_the_training_mode(method):
    model = TransformerVAE(TVAEConfig(**SMALL)).train()
    with pytest.raises(ValueError):
        if method == "reconstruct":
            model.reconstruct(torch.zeros(2, 5, 3), torch.zeros(2, 5, dtype=torch.bool))
        else:
            model.generate(2, 99)
    assert model.training


def test_an_attention_mask_of_another_batch_size_is_refused():
    attention = MultiHeadAttention(8, 2)
    x = torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(T=5, S=5\) or \(B=2, T, S\)"):
        attention(x, x, x, attn_mask=torch.ones(4, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(B=2, S=5\)"):
        attention(x, x, x, key_padding_mask=torch.ones(1, 5, dtype=torch.bool))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: sequences.SequenceDataset.from_padded(np.zeros((2, 5, 3)), [6, 5]), ValueError, r"lengths must lie in \[1, T=5\]"),
        (lambda: sequences.SequenceDataset.from_padded(np.zeros((2, 5, 3)), [-1, 5]), ValueError, r"lengths must lie in \[1, T=5\]"),
        (lambda: sequences.SequenceDataset.from_padded(np.zeros((2, 5, 3)), [0, 5]), ValueError, "min 0"),
        (lambda: sequences.SequenceDataset.from_padded(np.zeros((2, 5, 3)), [2.5, 5]), TypeError, "integers"),
        (lambda: sequences.SequenceDataset.from_padded(np.zeros((2, 5, 3)), [5]), ValueError, r"shape \(N=2,\)"),
        (lambda: sequences.SequenceDataset([np.full((3, 2), 1e300)]), ValueError, "float32's range"),
        (lambda: sequences.SequenceDataset([np.zeros((3, 2))], pad_value=float("nan")), ValueError, "pad_value must be finite"),
        (lambda: sequences.SequenceDataset([np.zeros((3, 2))], pad_value="0"), TypeError, "pad_value must be a real number"),
    ],
)  # fmt: skip
def test_sequence_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()
