import pytest
import torch
import torch.nn.functional as F

from tvae_lib import attention, masks
from tvae_lib.attention import (
    AdditiveAttention,
    MultiHeadAttention,
    attend_one_query,
    one_query_decoding,
    scaled_dot_product_attention,
)
from tvae_lib.kv_cache import KVCache


@pytest.mark.parametrize(
    "batch, heads, t, s, dh", [(1, 1, 1, 1, 4), (2, 3, 5, 7, 8), (4, 2, 9, 9, 16)]
)
def test_sdpa_matches_torch_without_mask(batch, heads, t, s, dh):
    q, k, v = (
        torch.randn(batch, heads, t, dh),
        torch.randn(batch, heads, s, dh),
        torch.randn(batch, heads, s, dh),
    )
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    torch.testing.assert_close(weights.sum(-1), torch.ones(batch, heads, t))


def test_sdpa_matches_torch_with_causal_and_padding_masks():
    q, k, v = torch.randn(3, 2, 6, 8), torch.randn(3, 2, 6, 8), torch.randn(3, 2, 6, 8)
    keys = masks.padding_mask(torch.tensor([6, 4, 2]), 6)
    mask = masks.merge_masks(masks.causal_mask(6), keys)  # (B, 1, T, S)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()


def test_sdpa_fully_masked_row_is_zero_not_nan():
    q, k, v = (torch.randn(1, 3, 4, requires_grad=True) for _ in range(3))
    mask = torch.ones(3, 3, dtype=torch.bool)
    mask[1] = False  # query 1 may attend to nothing
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert not out.isnan().any()
    torch.testing.assert_close(out[0, 1], torch.zeros(4))
    torch.testing.assert_close(weights[0, 1], torch.zeros(3))
    out.sum().backward()
    assert all(not t.grad.isnan().any() for t in (q, k, v))


def test_sdpa_bad_inputs():
    q = torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match="same rank"):
        scaled_dot_product_attention(q, torch.randn(5, 8), torch.randn(5, 8))
    with pytest.raises(ValueError, match="last dimension Dh"):
        scaled_dot_product_attention(q, torch.randn(2, 5, 4), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="same length S"):
        scaled_dot_product_attention(q, torch.randn(2, 5, 8), torch.randn(2, 6, 8))
    with pytest.raises(TypeError, match="bool"):
        scaled_dot_product_attention(q, q, q, torch.zeros(5, 5))
    with pytest.raises(ValueError, match="does not broadcast"):
        scaled_dot_product_attention(q, q, q, torch.ones(4, 5, dtype=torch.bool))


def _copy_into_torch(ours: MultiHeadAttention) -> torch.nn.MultiheadAttention:
    theirs = torch.nn.MultiheadAttention(ours.d_model, ours.n_heads, batch_first=True)
    with torch.no_grad():
        theirs.in_proj_weight.copy_(
            torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight])
        )
        theirs.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        theirs.out_proj.weight.copy_(ours.out_proj.weight)
        theirs.out_proj.bias.copy_(ours.out_proj.bias)
    return theirs.eval()


@pytest.mark.parametrize("need_weights", [False, True])
@pytest.mark.parametrize(
    "batch, t, s, d_model, heads", [(1, 1, 1, 8, 2), (3, 5, 7, 16, 4), (2, 9, 9, 12, 3)]
)
def test_mha_matches_torch_with_masks(batch, t, s, d_model, heads, need_weights):
    ours = MultiHeadAttention(d_model, heads).eval()
    theirs = _copy_into_torch(ours)
    query, memory = torch.randn(batch, t, d_model), torch.randn(batch, s, d_model)
    lengths = torch.randint(1, s + 1, (batch,))
    keys = masks.padding_mask(lengths, s)
    attn = torch.ones(t, s, dtype=torch.bool).tril(diagonal=s - t)  # causal, aligned at the end
    out, weights = ours(query, memory, memory, attn, keys, need_weights=need_weights)
    ref, ref_weights = theirs(
        query,
        memory,
        memory,
        key_padding_mask=masks.to_blocked(keys),
        attn_mask=masks.to_blocked(attn),
        need_weights=True,
        average_attn_weights=False,
    )
    valid = (attn[None] & keys[:, None]).any(-1)  # (B, T): rows with at least one key
    torch.testing.assert_close(out[valid], ref[valid], atol=1e-5, rtol=1e-5)
    if need_weights:
        torch.testing.assert_close(
            weights.transpose(1, 2)[valid], ref_weights.transpose(1, 2)[valid]
        )


def test_mha_need_weights_paths_agree():
    mha = MultiHeadAttention(16, 4).eval()
    x = torch.randn(2, 6, 16)
    fast, none = mha(x, x, x, masks.causal_mask(6))
    slow, weights = mha(x, x, x, masks.causal_mask(6), need_weights=True)
    assert none is None and weights.shape == (2, 4, 6, 6)
    torch.testing.assert_close(fast, slow)


def test_mha_dropout_only_in_training():
    mha = MultiHeadAttention(8, 2, dropout=0.5)
    x = torch.randn(2, 5, 8)
    mha.eval()
    torch.testing.assert_close(mha(x, x, x)[0], mha(x, x, x)[0])
    mha.train()
    assert not torch.allclose(mha(x, x, x)[0], mha(x, x, x)[0])


def test_mha_bad_inputs():
    with pytest.raises(ValueError, match="multiple of n_heads"):
        MultiHeadAttention(10, 3)
    mha = MultiHeadAttention(8, 2)
    x = torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match=r"query must have shape \(B, L, D=8\)"):
        mha(torch.randn(5, 8), x, x)
    with pytest.raises(ValueError, match=r"key must have shape \(B, L, D=8\)"):
        mha(x, torch.randn(2, 5, 4), x)
    with pytest.raises(ValueError, match="disagree"):
        mha(x, torch.randn(3, 5, 8), torch.randn(3, 5, 8))
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(T=5, S=5\)"):
        mha(x, x, x, attn_mask=torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(B=2, S=5\)"):
        mha(x, x, x, key_padding_mask=torch.ones(2, 4, dtype=torch.bool))


# Property tests over random shapes and random masks (dropout off throughout).

RANDOM_SEEDS = range(8)


def _random_allowed_mask(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """A random bool mask (True = allowed) with at least one allowed key in every row."""
    mask = torch.rand(shape, generator=generator) < 0.6
    first = torch.randint(0, shape[-1], shape[:-1], generator=generator)
    return mask | F.one_hot(first, shape[-1]).bool()


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_sdpa_matches_torch_on_random_shapes_and_masks(seed):
    gen = torch.Generator().manual_seed(seed)
    batch, heads, t, s, dh, dv = (int(n) for n in torch.randint(1, 9, (6,), generator=gen))
    q = torch.randn(batch, heads, t, dh, generator=gen, requires_grad=True)
    k = torch.randn(batch, heads, s, dh, generator=gen, requires_grad=True)
    v = torch.randn(batch, heads, s, dv, generator=gen, requires_grad=True)
    mask = _random_allowed_mask((batch, 1, t, s), gen)  # broadcast over heads
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(weights.sum(-1), torch.ones(batch, heads, t))
    assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()
    # The gradients agree too.
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
    for ours, theirs in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_sdpa_fully_masked_rows_on_random_shapes(seed):
    gen = torch.Generator().manual_seed(seed)
    batch, t, s, dh = (int(n) for n in torch.randint(2, 7, (4,), generator=gen))
    q, k, v = (torch.randn(batch, length, dh, generator=gen) for length in (t, s, s))
    mask = _random_allowed_mask((batch, t, s), gen)
    empty = torch.rand(batch, t, generator=gen) < 0.3  # (B, T) queries that see no key
    mask[empty] = False
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert not out.isnan().any() and not weights.isnan().any()
    assert (out[empty] == 0).all() and (weights[empty] == 0).all()
    torch.testing.assert_close(
        out[~empty], F.scaled_dot_product_attention(q, k, v, attn_mask=mask)[~empty]
    )


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_mha_matches_torch_on_random_shapes_and_masks(seed):
    gen = torch.Generator().manual_seed(seed)
    heads, head_dim, batch, t, s = (int(n) for n in torch.randint(1, 7, (5,), generator=gen))
    d_model = heads * head_dim
    torch.manual_seed(seed)
    ours = MultiHeadAttention(d_model, heads, dropout=0.3).eval()  # eval: dropout off
    theirs = _copy_into_torch(ours)
    query = torch.randn(batch, t, d_model, generator=gen)
    memory = torch.randn(batch, s, d_model, generator=gen)
    attn = _random_allowed_mask((batch, t, s), gen)  # a per-example (B, T, S) mask
    keys = torch.ones(batch, s, dtype=torch.bool)  # (B, S)
    out, weights = ours(query, memory, memory, attn, keys, need_weights=True)
    ref, ref_weights = theirs(
        query,
        memory,
        memory,
        key_padding_mask=masks.to_blocked(keys),
        attn_mask=masks.to_blocked(attn).repeat_interleave(heads, dim=0),  # (B * H, T, S)
        need_weights=True,
        average_attn_weights=False,
    )
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights, ref_weights, atol=1e-6, rtol=1e-5)


def test_mha_self_attention_with_padding_and_causal_masks_matches_torch():
    ours = MultiHeadAttention(24, 4).eval()
    theirs = _copy_into_torch(ours)
    x = torch.randn(3, 8, 24)
    keys = masks.padding_mask(torch.tensor([8, 5, 1]), 8)  # right padding: key 0 always real
    causal = masks.causal_mask(8)
    out, _ = ours(x, x, x, causal, keys)
    ref, _ = theirs(
        x, x, x, key_padding_mask=masks.to_blocked(keys), attn_mask=masks.to_blocked(causal)
    )
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert (out - ref).abs().max() <= 1e-5


def test_additive_attention_is_bahdanaus_formula():
    torch.manual_seed(0)
    attention = AdditiveAttention(query_dim=3, key_dim=5, hidden_dim=7).double()
    query, key = torch.randn(2, 4, 3).double(), torch.randn(2, 6, 5).double()
    value = torch.randn(2, 6, 2).double()
    output, weights = attention(query, key, value)
    w_q, w_k = attention.query_proj.weight, attention.key_proj.weight  # (A, 3), (A, 5)
    w = attention.score.weight[0]  # (A,)
    scores = torch.empty(2, 4, 6, dtype=torch.double)
    for b in range(2):
        for t in range(4):
            for s in range(6):
                scores[b, t, s] = w @ torch.tanh(w_q @ query[b, t] + w_k @ key[b, s])
    expected = scores.softmax(-1)
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(output, expected @ value)


def test_additive_attention_masks_like_sdpa():
    torch.manual_seed(1)
    attention = AdditiveAttention(4, 4, 8)
    query, key = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    value = torch.randn(2, 5, 4)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])[:, None, :]  # (B, 1, S)
    poisoned = value.clone()
    poisoned[1, 2:] = float("nan")  # hidden values cannot leak
    output, weights = attention(query, key, poisoned, mask)
    assert (weights[1, :, 2:] == 0).all() and torch.isfinite(output).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3))
    nothing = torch.zeros(2, 1, 5, dtype=torch.bool)
    output, weights = attention(query, key, value, nothing)
    assert (output == 0).all() and (weights == 0).all()


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((torch.zeros(3, 4), torch.zeros(2, 5, 4), torch.zeros(2, 5, 4)), ValueError, "same rank"),
        ((torch.zeros(2, 3, 4), torch.zeros(2, 5, 4), torch.zeros(2, 6, 4)), ValueError,
         "same length S"),
        ((torch.zeros(2, 3, 4), torch.zeros(2, 5, 4), torch.zeros(2, 5, 4),
          torch.ones(2, 3, 5)), TypeError, "mask must be a bool"),
    ],
)
def test_additive_attention_bad_inputs(args, error, match):
    with pytest.raises(error, match=match):
        AdditiveAttention(4, 4, 8)(*args)
    with pytest.raises(ValueError, match="hidden_dim must be"):
        AdditiveAttention(4, 4, 0)


@pytest.mark.parametrize("need_weights", [False, True])
def test_mha_fully_masked_query_gives_zero_attention_not_nan(need_weights):
    """A sequence whose every key is padding: attention contributes zeros (only out_proj's bias)."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    x = torch.randn(2, 3, 8)
    padding = torch.tensor([[True, True, False], [False, False, False]])  # (B, S)
    out, _ = mha(x, x, x, key_padding_mask=padding, need_weights=need_weights)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[1], mha.out_proj.bias.expand(3, 8))


@pytest.mark.parametrize("s", [1, 2, 7, 40])
def test_one_query_attention_matches_the_written_out_and_fused_kernels(s):
    torch.manual_seed(s)
    q, k, v = torch.randn(3, 4, 1, 8), torch.randn(3, 4, s, 8), torch.randn(3, 4, s, 6)
    out = attend_one_query(q, k, v)  # (B, H, 1, Dv)
    assert out.shape == (3, 4, 1, 6)
    torch.testing.assert_close(out, scaled_dot_product_attention(q, k, v)[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-6, rtol=0)
    q64, k64, v64 = q.double(), k.double(), v.double()  # in float64 the formula, not rounding
    torch.testing.assert_close(attend_one_query(q64, k64, v64),
                               scaled_dot_product_attention(q64, k64, v64)[0])  # fmt: skip


def test_one_query_decoding_needs_a_cache_one_query_no_dropout_and_no_gradient():
    one, two = torch.zeros(2, 4, 1, 8), torch.zeros(2, 4, 2, 8)
    with torch.no_grad():
        assert one_query_decoding(KVCache(), one, 0.0)
        assert one_query_decoding(KVCache(static=True), one, 0.0)
        assert not one_query_decoding(None, one, 0.0)  # not decoding
        assert not one_query_decoding(KVCache(), two, 0.0)  # a prefix of two queries
        assert not one_query_decoding(KVCache(), one, 0.1)  # dropout on the weights
    assert not one_query_decoding(KVCache(), one, 0.0)  # autograd on: training


def test_mha_decodes_one_query_by_matrix_products_only_without_gradients(monkeypatch):
    calls = []

    def spy(q, k, v):
        calls.append(k.shape[2])  # keys attended
        return attend_one_query(q, k, v)

    monkeypatch.setattr(attention, "attend_one_query", spy)
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    x = torch.randn(2, 4, 8)
    with torch.no_grad():
        full = mha(x, x, x, attn_mask=masks.causal_mask(4))[0]  # (B, T, D)
        cache = KVCache()
        steps = [mha(x[:, t : t + 1], x[:, t : t + 1], x[:, t : t + 1], cache=cache)[0]
                 for t in range(4)]  # fmt: skip
        assert calls == [1, 2, 3, 4]  # every step, over every key so far
        mha(x[:, :2], x[:, :2], x[:, :2], cache=KVCache())  # two queries: the fused kernel
        padding = torch.tensor([[True, False], [True, True]])
        mha(x[:, :1], x[:, :2], x[:, :2], key_padding_mask=padding, cache=KVCache(static=True))
        assert calls == [1, 2, 3, 4]  # a mask: the fused kernel
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-6, rtol=0)
    cache, steps = KVCache(), []
    for t in range(4):  # autograd on: the fused kernel, so training is unchanged
        steps.append(mha(x[:, t : t + 1], x[:, t : t + 1], x[:, t : t + 1], cache=cache)[0])
    assert calls == [1, 2, 3, 4]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-6, rtol=0)
