import pytest
import torch
from torch import nn

from tvae_lib import masks
from tvae_lib.torch_reference import to_torch_layer
from tvae_lib.transformer import (
    Decoder,
    DecoderLayer,
    Encoder,
    EncoderLayer,
    FeedForward,
)

D, H, FF = 16, 4, 32


def _padding():
    return masks.padding_mask(torch.tensor([7, 4, 5]), max_len=7)  # (B=3, 7)


def test_feed_forward_is_linear_relu_linear():
    ff = FeedForward(d_model=4, d_ff=8)
    x = torch.randn(2, 3, 4)
    expected = torch.relu(x @ ff.linear1.weight.T + ff.linear1.bias) @ ff.linear2.weight.T
    torch.testing.assert_close(ff(x), expected + ff.linear2.bias)


def test_feed_forward_acts_on_each_step_alone():
    ff = FeedForward(d_model=4, d_ff=8)
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(ff(x)[:, 2], ff(x[:, 2]))


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_pytorch(norm_first):
    ours = EncoderLayer(D, H, FF, dropout=0.1, norm_first=norm_first).eval()
    theirs = to_torch_layer(ours)
    x = torch.randn(3, 7, D)
    attn_mask = masks.causal_mask(7)
    padding = _padding()
    out = ours(x, attn_mask=attn_mask, key_padding_mask=padding)
    ref = theirs(
        x, src_mask=masks.to_blocked(attn_mask), src_key_padding_mask=masks.to_blocked(padding)
    )
    assert out.shape == (3, 7, D)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    # No masks at all:
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=0)


def test_encoder_layer_gradients_match_pytorch():
    ours = EncoderLayer(D, H, FF, norm_first=True)
    theirs = to_torch_layer(ours)
    x = torch.randn(2, 5, D, requires_grad=True)
    ours(x).pow(2).sum().backward()
    grad_ours, x.grad = x.grad, None
    theirs(x).pow(2).sum().backward()
    torch.testing.assert_close(grad_ours, x.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        ours.feed_forward.linear1.weight.grad, theirs.linear1.weight.grad, atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_pytorch(norm_first):
    ours = DecoderLayer(D, H, FF, dropout=0.1, norm_first=norm_first).eval()
    theirs = to_torch_layer(ours)
    x, memory = torch.randn(3, 7, D), torch.randn(3, 5, D)
    causal = masks.causal_mask(7)
    tgt_padding = _padding()
    memory_padding = masks.padding_mask(torch.tensor([5, 2, 3]), max_len=5)
    out = ours(
        x,
        memory,
        self_attn_mask=causal,
        key_padding_mask=tgt_padding,
        memory_key_padding_mask=memory_padding,
    )
    ref = theirs(
        x,
        memory,
        tgt_mask=masks.to_blocked(causal),
        tgt_key_padding_mask=masks.to_blocked(tgt_padding),
        memory_key_padding_mask=masks.to_blocked(memory_padding),
    )
    assert out.shape == (3, 7, D)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_decoder_layer_memory_mask_matches_pytorch():
    ours = DecoderLayer(D, H, FF).eval()
    theirs = to_torch_layer(ours)
    x, memory = torch.randn(2, 4, D), torch.randn(2, 6, D)
    memory_mask = torch.rand(4, 6) > 0.3
    memory_mask[:, 0] = True  # every query sees at least one key
    out = ours(x, memory, memory_mask=memory_mask)
    ref = theirs(x, memory, memory_mask=masks.to_blocked(memory_mask))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_causal_decoder_ignores_the_future():
    layer = DecoderLayer(D, H, FF).eval()
    x, memory = torch.randn(1, 6, D), torch.randn(1, 3, D)
    changed = x.clone()
    changed[:, 4:] = torch.randn(1, 2, D)  # rewrite steps 4 and 5
    causal = masks.causal_mask(6)
    out, out_changed = layer(x, memory, causal), layer(changed, memory, causal)
    torch.testing.assert_close(out[:, :4], out_changed[:, :4])
    assert not torch.allclose(out[:, 4:], out_changed[:, 4:])
    # Without the mask the past sees the future.
    assert not torch.allclose(layer(x, memory)[:, :4], layer(changed, memory)[:, :4])


def test_padded_keys_do_not_change_real_outputs():
    layer = EncoderLayer(D, H, FF).eval()
    x = torch.randn(1, 6, D)
    changed = x.clone()
    changed[:, 4:] = 100.0  # garbage in the padding
    padding = masks.padding_mask(torch.tensor([4]), max_len=6)
    torch.testing.assert_close(
        layer(x, key_padding_mask=padding)[:, :4], layer(changed, key_padding_mask=padding)[:, :4]
    )


def test_dropout_is_active_only_in_training():
    layer = EncoderLayer(D, H, FF, dropout=0.5)
    x = torch.randn(2, 5, D)
    assert not torch.allclose(layer(x), layer(x))
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_stack_is_layers_in_sequence(norm_first):
    prototype = EncoderLayer(D, H, FF, norm_first=norm_first)
    encoder = Encoder(prototype, n_layers=3, final_norm=norm_first).eval()
    assert len(encoder.layers) == 3 and all(layer is not prototype for layer in encoder.layers)
    x, padding = torch.randn(3, 7, D), _padding()
    expected = x
    for layer in encoder.layers:
        expected = layer(expected, key_padding_mask=padding)
    if norm_first:
        expected = encoder.norm(expected)
    else:
        assert encoder.norm is None
    torch.testing.assert_close(encoder(x, key_padding_mask=padding), expected)


def test_stack_layers_are_independently_initialised():
    prototype = EncoderLayer(D, H, FF)
    encoder = Encoder(prototype, n_layers=2)
    w0, w1 = (layer.self_attn.q_proj.weight for layer in encoder.layers)
    assert not torch.equal(w0, w1)
    assert not torch.equal(w0, prototype.self_attn.q_proj.weight)
    assert w0.data_ptr() != w1.data_ptr()
    # Same distribution as a fresh layer: uniform in +-1/sqrt(D).
    assert w0.abs().max() <= D**-0.5


def test_decoder_stack_matches_pytorch_stack():
    prototype = DecoderLayer(D, H, FF, norm_first=True)
    decoder = Decoder(prototype, n_layers=2, final_norm=True).eval()
    theirs = nn.TransformerDecoder(
        to_torch_layer(decoder.layers[0]), num_layers=2, norm=nn.LayerNorm(D)
    ).eval()
    for i, layer in enumerate(decoder.layers):
        theirs.layers[i] = to_torch_layer(layer).eval()
    x, memory = torch.randn(2, 5, D), torch.randn(2, 3, D)
    causal = masks.causal_mask(5)
    out = decoder(x, memory, self_attn_mask=causal)
    ref = theirs(x, memory, tgt_mask=masks.to_blocked(causal))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_encoder_stack_matches_pytorch_stack():
    encoder = Encoder(EncoderLayer(D, H, FF), n_layers=2).eval()
    theirs = nn.TransformerEncoder(
        to_torch_layer(encoder.layers[0]), num_layers=2, enable_nested_tensor=False
    ).eval()
    theirs.layers[1] = to_torch_layer(encoder.layers[1]).eval()
    x, padding = torch.randn(3, 7, D), _padding()
    out = encoder(x, key_padding_mask=padding)
    ref = theirs(x, src_key_padding_mask=masks.to_blocked(padding))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_layers_reject_bad_inputs():
    encoder_layer, decoder_layer = EncoderLayer(D, H, FF), DecoderLayer(D, H, FF)
    with pytest.raises(ValueError, match=r"x must have shape \(B, S, D=16\).*got \(7, 16\)"):
        encoder_layer(torch.randn(7, D))
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, D=16\).*got \(2, 7, 8\)"):
        decoder_layer(torch.randn(2, 7, 8), torch.randn(2, 3, D))
    with pytest.raises(ValueError, match=r"memory must have shape \(B, S, D=16\)"):
        decoder_layer(torch.randn(2, 7, D), torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"memory must have the batch size of x \(B=2\)"):
        decoder_layer(torch.randn(2, 7, D), torch.randn(3, 3, D))
    with pytest.raises(TypeError, match="tensor"):
        encoder_layer(None)
    with pytest.raises(TypeError, match="bool"):
        encoder_layer(torch.randn(2, 3, D), attn_mask=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="key_padding_mask must have shape"):
        encoder_layer(torch.randn(2, 3, D), key_padding_mask=torch.ones(2, 4, dtype=torch.bool))


def test_constructors_reject_bad_arguments():
    with pytest.raises(ValueError, match="d_ff must be a positive int"):
        FeedForward(d_model=4, d_ff=0)
    with pytest.raises(ValueError, match="multiple of n_heads"):
        EncoderLayer(d_model=10, n_heads=4, d_ff=8)
    with pytest.raises(ValueError, match="n_layers must be a positive int"):
        Encoder(EncoderLayer(D, H, FF), n_layers=0)
    with pytest.raises(TypeError, match="layer must be a DecoderLayer, got EncoderLayer"):
        Decoder(EncoderLayer(D, H, FF), n_layers=2)
    with pytest.raises(TypeError, match="EncoderLayer or DecoderLayer"):
        to_torch_layer(nn.Linear(2, 2))
