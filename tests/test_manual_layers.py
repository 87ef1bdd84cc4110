import pytest
import torch
from torch import nn

from tvae_lib import manual_encoder, manual_layers, masks
from tvae_lib.attention import MultiHeadAttention
from tvae_lib.manual_encoder import (
    check_encoder_layer,
    encoder_layer_backward,
    encoder_layer_forward,
)
from tvae_lib.manual_layers import (
    feed_forward_backward,
    feed_forward_forward,
    linear_backward,
    linear_forward,
    multi_head_attention_backward,
    multi_head_attention_forward,
)
from tvae_lib.transformer import EncoderLayer, FeedForward

F64 = torch.float64


def _params(module):
    return {name: p.detach() for name, p in module.named_parameters()}


def _autograd(y, inputs, module, grad_y):
    """Autograd's gradients of ``(y * grad_y).sum()`` for ``inputs``, then by name."""
    names = [name for name, _ in module.named_parameters()]
    grads = torch.autograd.grad(y, [*inputs, *module.parameters()], grad_y)
    return grads[: len(inputs)], dict(zip(names, grads[len(inputs) :], strict=True))


def _assert_grads(ours: dict, theirs: dict):
    assert ours.keys() == theirs.keys()
    for name, grad in theirs.items():
        torch.testing.assert_close(ours[name], grad, rtol=0, atol=1e-10, msg=name)


# --- linear ---------------------------------------------------------------------------


def test_linear_backward_literal():
    # y = x W^T + b with x = (1, 2): dx = dy W, dW = dy^T x, db = dy.
    x = torch.tensor([[1.0, 2.0]])
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # (D_out=3, D_in=2)
    y, cache = linear_forward(x, weight, torch.zeros(3))
    torch.testing.assert_close(y, torch.tensor([[1.0, 2.0, 3.0]]))
    grad_x, grad_weight, grad_bias = linear_backward(
        torch.tensor([[1.0, 0.0, 1.0]]), cache
    )
    torch.testing.assert_close(grad_x, torch.tensor([[2.0, 1.0]]))
    torch.testing.assert_close(
        grad_weight, torch.tensor([[1.0, 2.0], [0.0, 0.0], [1.0, 2.0]])
    )
    torch.testing.assert_close(grad_bias, torch.tensor([1.0, 0.0, 1.0]))


@pytest.mark.parametrize("shape", [(5,), (1, 5), (4, 5), (2, 3, 4, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_backward_matches_autograd(shape, bias):
    linear = nn.Linear(5, 3, bias=bias).double()
    x = torch.randn(shape, dtype=F64, requires_grad=True)
    y, cache = linear_forward(
        x.detach(),
        linear.weight.detach(),
        None if linear.bias is None else linear.bias.detach(),
    )
    torch.testing.assert_close(y, linear(x).detach())
    grad_y = torch.randn(*shape[:-1], 3, dtype=F64)
    (expected_x,), expected = _autograd(linear(x), [x], linear, grad_y)
    grad_x, grad_weight, grad_bias = linear_backward(grad_y, cache)
    torch.testing.assert_close(grad_x, expected_x, rtol=0, atol=1e-10)
    ours = {"weight": grad_weight} | ({"bias": grad_bias} if bias else {})
    assert (grad_bias is None) == (not bias)
    _assert_grads(ours, expected)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (
            (torch.randn(4, 5), torch.randn(3)),
            ValueError,
            r"weight must have shape \(D_out",
        ),
        (
            (torch.randn(4, 6), torch.randn(3, 5)),
            ValueError,
            r"x must have shape \(\.\.\., D_in\)",
        ),
        (([1.0] * 5, torch.randn(3, 5)), TypeError, "x must be a tensor"),
        (
            (torch.randn(4, 5).double(), torch.randn(3, 5)),
            TypeError,
            "x must have dtype",
        ),
        (
            (torch.ones(4, 5, dtype=torch.long), torch.randn(3, 5)),
            TypeError,
            "x must have dtype",
        ),
        (
            (torch.randn(5), torch.ones(3, 5, dtype=torch.long)),
            TypeError,
            "weight must be a floating-point tensor",
        ),
        (
            (torch.randn(5), torch.randn(3, 5), torch.randn(5)),
            ValueError,
            "bias must have shape",
        ),
        (
            (torch.randn(5), torch.randn(3, 5), torch.randn(3).double()),
            TypeError,
            "bias must have dtype torch.float32",
        ),
    ],
)
def test_linear_forward_rejects_bad_input(args, error, message):
    with pytest.raises(error, match=message):
        linear_forward(*args)


def test_linear_backward_rejects_bad_gradient():
    _, cache = linear_forward(torch.randn(2, 4, 5), torch.randn(3, 5))
    with pytest.raises(
        ValueError, match=r"grad_y must have shape \(\.\.\., D_out\)=\(2, 4, 3\)"
    ):
        linear_backward(torch.randn(2, 4, 5), cache)
    with pytest.raises(TypeError, match="grad_y must have dtype torch.float32"):
        linear_backward(torch.randn(2, 4, 3, dtype=F64), cache)


# --- feed-forward ---------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8,), (1, 1, 8), (2, 5, 8), (2, 3, 4, 8)])
def test_feed_forward_matches_module_and_autograd(shape):
    ff = FeedForward(d_model=8, d_ff=16).double()
    x = torch.randn(shape, dtype=F64, requires_grad=True)
    y, cache = feed_forward_forward(x.detach(), _params(ff))
    torch.testing.assert_close(y, ff(x).detach())
    grad_y = torch.randn(shape, dtype=F64)
    (expected_x,), expected = _autograd(ff(x), [x], ff, grad_y)
    grad_x, grads = feed_forward_backward(grad_y, cache)
    torch.testing.assert_close(grad_x, expected_x, rtol=0, atol=1e-10)
    _assert_grads(grads, expected)


def test_relu_blocks_the_gradient_of_inactive_units():
    params = {
        "linear1.weight": torch.tensor([[1.0], [-1.0]]),
        "linear1.bias": torch.zeros(2),
        "linear2.weight": torch.ones(1, 2),
        "linear2.bias": torch.zeros(1),
    }
    _, cache = feed_forward_forward(torch.tensor([[2.0]]), params)  # hidden (2, 0)
    _, grads = feed_forward_backward(torch.tensor([[1.0]]), cache)
    torch.testing.assert_close(grads["linear1.weight"], torch.tensor([[2.0], [0.0]]))
    torch.testing.assert_close(grads["linear2.weight"], torch.tensor([[2.0, 0.0]]))


def test_feed_forward_rejects_bad_params():
    with pytest.raises(TypeError, match="params must map names to tensors"):
        feed_forward_forward(torch.randn(2, 8), [torch.randn(16, 8)])
    params = _params(FeedForward(8, 16))
    del params["linear2.weight"]
    with pytest.raises(ValueError, match="params has no 'linear2.weight'"):
        feed_forward_forward(torch.randn(2, 8), params)
    with pytest.raises(
        ValueError, match=r"x must have shape \(\.\.\., D_in\)=\(2, 8\)"
    ):
        feed_forward_forward(torch.randn(2, 6), _params(FeedForward(8, 16)))


# --- multi-head attention -------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "target_len", "source_len", "d_model", "n_heads"),
    [(2, 5, 5, 8, 2), (1, 1, 1, 4, 1), (3, 4, 6, 8, 4), (2, 1, 3, 6, 3)],
)
@pytest.mark.parametrize("masked", [False, True])
def test_multi_head_attention_matches_module_and_autograd(
    batch, target_len, source_len, d_model, n_heads, masked
):
    attention = MultiHeadAttention(d_model, n_heads).double()
    query = torch.randn(batch, target_len, d_model, dtype=F64, requires_grad=True)
    key = torch.randn(batch, source_len, d_model, dtype=F64, requires_grad=True)
    value = torch.randn(batch, source_len, d_model, dtype=F64, requires_grad=True)
    mask_kwargs = {}
    if masked:  # every query sees key 0, so no row is fully masked
        lengths = torch.randint(1, source_len + 1, (batch,))
        attn_mask = torch.ones(target_len, source_len, dtype=torch.bool).tril()
        mask_kwargs = {
            "attn_mask": attn_mask,
            "key_padding_mask": masks.padding_mask(lengths, max_len=source_len),
        }
    y_autograd = attention(query, key, value, **mask_kwargs)[0]
    y, cache = multi_head_attention_forward(
        query.detach(),
        key.detach(),
        value.detach(),
        _params(attention),
        n_heads,
        **mask_kwargs,
    )
    torch.testing.assert_close(y, y_autograd.detach())
    grad_y = torch.randn_like(y)
    expected_inputs, expected = _autograd(
        y_autograd, [query, key, value], attention, grad_y
    )
    *grad_inputs, grads = multi_head_attention_backward(grad_y, cache)
    for ours, theirs in zip(grad_inputs, expected_inputs, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-10)
    _assert_grads(grads, expected)


def test_multi_head_attention_batched_attn_mask():
    attention = MultiHeadAttention(8, 2).double()
    x = torch.randn(2, 4, 8, dtype=F64)
    attn_mask = torch.rand(2, 4, 4) > 0.5
    attn_mask[..., 0] = True
    y, _ = multi_head_attention_forward(
        x, x, x, _params(attention), 2, attn_mask=attn_mask
    )
    torch.testing.assert_close(y, attention(x, x, x, attn_mask=attn_mask)[0].detach())


def test_key_bias_gets_no_gradient():
    # k_j + b adds q . b to every score of a row; the softmax ignores such a shift.
    attention = MultiHeadAttention(8, 2).double()
    x = torch.randn(2, 5, 8, dtype=F64)
    _, cache = multi_head_attention_forward(x, x, x, _params(attention), 2)
    *_, grads = multi_head_attention_backward(torch.randn(2, 5, 8, dtype=F64), cache)
    torch.testing.assert_close(grads["k_proj.bias"], torch.zeros(8, dtype=F64))
    assert grads["q_proj.bias"].abs().max() > 1e-3


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            {"query": torch.randn(4, 8)},
            ValueError,
            r"query must have shape \(B, T, D\)",
        ),
        ({"key": torch.randn(2, 5, 6)}, ValueError, r"key must have shape \(B, S, D\)"),
        (
            {"key": torch.randn(3, 5, 8)},
            ValueError,
            r"key must have shape \(B, S, D\)=\(2, 5, 8\)",
        ),
        (
            {"value": torch.randn(2, 4, 8)},
            ValueError,
            r"value must have shape \(B, S, D\)",
        ),
        ({"value": torch.randn(2, 5, 8).double()}, TypeError, "value must have dtype"),
        ({"n_heads": 3}, ValueError, "n_heads must divide D=8, got 3"),
        ({"n_heads": 0}, ValueError, "n_heads must be a positive int"),
        (
            {"key_padding_mask": torch.ones(2, 4, dtype=torch.bool)},
            ValueError,
            "key_padding_mask",
        ),
        (
            {"key_padding_mask": torch.ones(2, 5)},
            TypeError,
            "key_padding_mask must be a bool",
        ),
        (
            {"attn_mask": torch.ones(5, 4, dtype=torch.bool)},
            ValueError,
            r"attn_mask must have shape",
        ),
        (
            {"attn_mask": torch.ones(3, 3, 5, dtype=torch.bool)},
            ValueError,
            r"\(B, T, S\)=\(2, 3, 5\)",
        ),
    ],
)
def test_multi_head_attention_rejects_bad_input(change, error, message):
    kwargs = {
        "query": torch.randn(2, 3, 8),
        "key": torch.randn(2, 5, 8),
        "value": torch.randn(2, 5, 8),
        "params": _params(MultiHeadAttention(8, 2)),
        "n_heads": 2,
    } | change
    with pytest.raises(error, match=message):
        multi_head_attention_forward(**kwargs)


# --- encoder layer --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "length", "d_model", "n_heads"),
    [(2, 5, 8, 2), (1, 1, 4, 1), (3, 6, 8, 4)],
)
@pytest.mark.parametrize("masked", [False, True])
def test_encoder_layer_matches_module_and_autograd(
    batch, length, d_model, n_heads, masked
):
    layer = EncoderLayer(d_model, n_heads, d_ff=2 * d_model).double().eval()
    x = torch.randn(batch, length, d_model, dtype=F64, requires_grad=True)
    mask_kwargs = {}
    if masked:
        lengths = torch.randint(1, length + 1, (batch,))
        mask_kwargs = {
            "attn_mask": masks.causal_mask(length),
            "key_padding_mask": masks.padding_mask(lengths, max_len=length),
        }
    y_autograd = layer(x, **mask_kwargs)
    y, cache = encoder_layer_forward(x.detach(), _params(layer), n_heads, **mask_kwargs)
    torch.testing.assert_close(y, y_autograd.detach())
    grad_y = torch.randn_like(y)
    (expected_x,), expected = _autograd(y_autograd, [x], layer, grad_y)
    grad_x, grads = encoder_layer_backward(grad_y, cache)
    torch.testing.assert_close(grad_x, expected_x, rtol=0, atol=1e-10)
    assert list(grads) == [name for name, _ in layer.named_parameters()]
    _assert_grads(grads, expected)


def test_check_encoder_layer_catches_a_wrong_gradient(monkeypatch):
    # Forget the residual's straight path around the feed-forward network: the check
    # must flag every gradient that flows through it, not the output or the last norm.
    right = manual_layers.feed_forward_backward

    def branch_only(grad_y, cache):
        grad_x, grads = right(grad_y, cache)
        # the encoder layer adds grad_y back, so what reaches x1 is the branch alone
        return grad_x - grad_y, grads

    monkeypatch.setattr(manual_encoder, "feed_forward_backward", branch_only)
    diffs = check_encoder_layer(EncoderLayer(8, 2, 16), torch.randn(2, 4, 8))
    assert diffs["output"] < 1e-10 and diffs["norm2.weight"] < 1e-10
    assert diffs["x"] > 1e-3 and diffs["norm1.weight"] > 1e-3


def test_encoder_layer_rejects_bad_input():
    params = _params(EncoderLayer(8, 2, 16))
    with pytest.raises(
        ValueError, match=r"x must have shape \(B, S, D\), got \(4, 8\)"
    ):
        encoder_layer_forward(torch.randn(4, 8), params, 2)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        encoder_layer_forward(torch.ones(2, 4, 8, dtype=torch.long), params, 2)
    with pytest.raises(TypeError, match="params must map names to tensors"):
        encoder_layer_forward(torch.randn(2, 4, 8), list(params.values()), 2)
    with pytest.raises(ValueError, match="params has no 'norm2.bias'"):
        without = {k: v for k, v in params.items() if k != "norm2.bias"}
        encoder_layer_forward(torch.randn(2, 4, 8), without, 2)
    bad_norm = params | {"norm1.weight": torch.ones(6)}
    with pytest.raises(
        ValueError, match=r"params\['norm1.weight'\] must have shape \(D,\)"
    ):
        encoder_layer_forward(torch.randn(2, 4, 8), bad_norm, 2)
    with pytest.raises(TypeError, match="x must have dtype torch.float32"):
        encoder_layer_forward(torch.randn(2, 4, 8, dtype=F64), params, 2)
    _, cache = encoder_layer_forward(torch.randn(2, 4, 8), params, 2)
    with pytest.raises(
        ValueError, match=r"grad_y must have shape \(B, S, D\)=\(2, 4, 8\)"
    ):
        encoder_layer_backward(torch.randn(2, 8, 4), cache)


# --- check_encoder_layer --------------------------------------------------------------


def test_check_encoder_layer_reports_every_tensor_tiny():
    layer = EncoderLayer(8, 2, 16, dropout=0.1)  # float32, training mode
    x = torch.randn(2, 6, 8)
    padding = masks.padding_mask(torch.tensor([6, 3]), max_len=6)
    with torch.no_grad():  # the check turns autograd on for its own comparison
        diffs = check_encoder_layer(
            layer, x, attn_mask=masks.causal_mask(6), key_padding_mask=padding
        )
    assert list(diffs) == [
        "output",
        "x",
        *(name for name, _ in layer.named_parameters()),
    ]
    assert max(diffs.values()) < 1e-10
    assert layer.training and layer.norm1.weight.dtype == torch.float32  # untouched
    assert diffs == check_encoder_layer(
        layer, x, attn_mask=masks.causal_mask(6), key_padding_mask=padding
    )  # repeatable


def test_check_encoder_layer_takes_an_upstream_gradient():
    layer, x = EncoderLayer(4, 1, 8), torch.randn(1, 3, 4)
    diffs = check_encoder_layer(layer, x, grad_y=torch.randn(1, 3, 4))
    assert max(diffs.values()) < 1e-10
    with pytest.raises(ValueError, match="grad_y must have shape"):
        check_encoder_layer(layer, x, grad_y=torch.randn(1, 3, 5))
    with pytest.raises(TypeError, match="grad_y must be a tensor"):
        check_encoder_layer(layer, x, grad_y=[0.0] * 12)


def test_check_encoder_layer_rejects_bad_input():
    with pytest.raises(
        TypeError, match="layer must be an EncoderLayer, got FeedForward"
    ):
        check_encoder_layer(FeedForward(4, 8), torch.randn(1, 3, 4))
    with pytest.raises(ValueError, match="layer must be post-LN"):
        check_encoder_layer(
            EncoderLayer(4, 1, 8, norm_first=True), torch.randn(1, 3, 4)
        )
    with pytest.raises(ValueError, match=r"x must have shape \(B, S, D\)"):
        check_encoder_layer(EncoderLayer(4, 1, 8), torch.randn(3, 4))
