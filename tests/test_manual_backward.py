import pytest
import torch
import torch.nn.functional as F

from tvae_lib import masks
from tvae_lib.attention import scaled_dot_product_attention
from tvae_lib.manual_backward import (
    ManualAttention,
    ManualLayerNorm,
    ManualSoftmax,
    attention_backward,
    attention_forward,
    layer_norm_backward,
    layer_norm_forward,
    softmax_backward,
    softmax_forward,
)


def _double(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def test_softmax_forward_matches_torch_and_is_stable():
    x = torch.randn(4, 7)
    torch.testing.assert_close(softmax_forward(x), x.softmax(-1))
    big = torch.tensor([[1000.0, 1000.0]])  # exp(1000) overflows without the shift
    torch.testing.assert_close(softmax_forward(big), torch.tensor([[0.5, 0.5]]))


def test_softmax_backward_literal():
    # y = (0.5, 0.5), dy = (1, 0): dx = y * (dy - 0.5) = (0.25, -0.25)
    grad = softmax_backward(torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(grad, torch.tensor([0.25, -0.25]))


def test_softmax_backward_matches_autograd_and_jacobian():
    x = _double(3, 5)
    y = x.softmax(-1)
    grad_y = torch.randn(3, 5, dtype=torch.float64)
    (expected,) = torch.autograd.grad(y, x, grad_y)
    torch.testing.assert_close(softmax_backward(grad_y, y.detach()), expected)
    jacobian = torch.autograd.functional.jacobian(lambda v: v.softmax(-1), x[0].detach())
    p = y[0].detach()
    torch.testing.assert_close(jacobian, torch.diag(p) - p[:, None] * p[None, :])


def test_softmax_gradcheck():
    assert torch.autograd.gradcheck(ManualSoftmax.apply, (_double(2, 3, 4),))


def test_layer_norm_forward_matches_torch():
    x, weight, bias = torch.randn(2, 5, 8), torch.randn(8), torch.randn(8)
    y, _ = layer_norm_forward(x, weight, bias)
    torch.testing.assert_close(y, F.layer_norm(x, (8,), weight, bias, eps=1e-5))


def test_layer_norm_backward_matches_autograd():
    x, weight, bias = _double(2, 5, 8), _double(8), _double(8)
    grad_y = torch.randn(2, 5, 8, dtype=torch.float64)
    expected = torch.autograd.grad(F.layer_norm(x, (8,), weight, bias), (x, weight, bias), grad_y)
    _, cache = layer_norm_forward(x.detach(), weight.detach(), bias.detach())
    for ours, theirs in zip(layer_norm_backward(grad_y, cache), expected, strict=True):
        torch.testing.assert_close(ours, theirs)


def test_layer_norm_input_gradient_is_centred():
    # LayerNorm undoes shifts of x, so the gradient has zero sum over D for any upstream grad.
    x = torch.randn(4, 6, dtype=torch.float64)
    _, cache = layer_norm_forward(x, torch.ones(6, dtype=torch.float64), torch.zeros(6).double())
    grad_x, _, _ = layer_norm_backward(torch.randn(4, 6, dtype=torch.float64), cache)
    torch.testing.assert_close(grad_x.sum(-1), torch.zeros(4, dtype=torch.float64))


def test_layer_norm_gradcheck():
    inputs = (_double(3, 6), _double(6), _double(6), 1e-5)
    assert torch.autograd.gradcheck(ManualLayerNorm.apply, inputs)


def test_layer_norm_rejects_bad_weight():
    with pytest.raises(ValueError, match=r"shape \(D=8,\), got \(4,\)"):
        layer_norm_forward(torch.randn(2, 8), torch.ones(4), torch.zeros(8))


def test_attention_forward_matches_library():
    q, k, v = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 5)
    mask = masks.causal_mask(6)[:4]  # (T=4, S=6)
    out, cache = attention_forward(q, k, v, mask)
    expected, weights = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(cache.weights, weights)


@pytest.mark.parametrize("masked", [False, True])
def test_attention_backward_matches_autograd(masked):
    q, k, v = _double(2, 2, 5, 4), _double(2, 2, 5, 4), _double(2, 2, 5, 3)
    mask = None
    if masked:
        mask = masks.merge_masks(
            masks.causal_mask(5), masks.padding_mask(torch.tensor([5, 3]), max_len=5)
        )  # (B, 1, T, S)
    grad_out = torch.randn(2, 2, 5, 3, dtype=torch.float64)
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    expected = torch.autograd.grad(out, (q, k, v), grad_out)
    _, cache = attention_forward(q.detach(), k.detach(), v.detach(), mask)
    for ours, theirs in zip(attention_backward(grad_out, cache), expected, strict=True):
        torch.testing.assert_close(ours, theirs)


def test_attention_gradcheck_with_mask():
    mask = masks.causal_mask(4)
    inputs = (_double(2, 4, 3), _double(2, 4, 3), _double(2, 4, 2), mask)
    assert torch.autograd.gradcheck(ManualAttention.apply, inputs)


def test_fully_masked_query_gets_zero_output_and_no_gradient():
    mask = torch.tensor([[True, True], [False, False]])  # query 1 sees nothing
    q, k, v = _double(2, 3), _double(2, 3), _double(2, 3)
    out = ManualAttention.apply(q, k, v, mask)
    torch.testing.assert_close(out[1], torch.zeros(3, dtype=torch.float64))
    assert not out.isnan().any()
    out.sum().backward()
    torch.testing.assert_close(q.grad[1], torch.zeros(3, dtype=torch.float64))
    assert torch.autograd.gradcheck(ManualAttention.apply, (q, k, v, mask))


def test_attention_rejects_float_mask():
    with pytest.raises(TypeError, match="bool"):
        attention_forward(torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 3), torch.ones(2, 2))
