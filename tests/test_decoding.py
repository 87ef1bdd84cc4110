import functools

import pytest
import torch
from torch import nn

from tvae_lib import decoding, masks
from tvae_lib.attention import attend_one_query
from tvae_lib.decoding import DecoderCache, generate
from tvae_lib.kv_cache import KVCache
from tvae_lib.transformer import Decoder, DecoderLayer
from tvae_lib.tvae import TransformerVAE, TVAEConfig

D, H, FF, F_IN = 16, 4, 32, 3


def _decoder(norm_first: bool, final_norm: bool = False, n_layers: int = 2) -> Decoder:
    layer = DecoderLayer(D, H, FF, dropout=0.1, norm_first=norm_first)
    return Decoder(layer, n_layers, final_norm=final_norm).eval()


@pytest.mark.parametrize("norm_first, final_norm", [(False, False), (True, True)])
def test_step_by_step_equals_the_full_causal_pass(norm_first, final_norm):
    decoder = _decoder(norm_first, final_norm)
    x, memory = torch.randn(3, 9, D), torch.randn(3, 4, D)
    memory_padding = masks.padding_mask(torch.tensor([4, 2, 3]), max_len=4)
    with torch.no_grad():
        full = decoder(x, memory, self_attn_mask=masks.causal_mask(9),
                       memory_key_padding_mask=memory_padding)  # (B, T, D)
        cache = DecoderCache(decoder)
        steps = [decoder(x[:, t : t + 1], memory, memory_key_padding_mask=memory_padding,
                         cache=cache) for t in range(9)]  # fmt: skip
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)
    assert cache.length == 9


def test_a_prefix_then_single_steps_equals_the_full_pass():
    decoder = _decoder(norm_first=False)
    x, memory = torch.randn(2, 7, D), torch.randn(2, 1, D)
    with torch.no_grad():
        full = decoder(x, memory, self_attn_mask=masks.causal_mask(7))
        cache = DecoderCache(decoder)
        prefix = decoder(x[:, :4], memory, self_attn_mask=masks.causal_mask(4), cache=cache)
        rest = [decoder(x[:, t : t + 1], memory, cache=cache) for t in range(4, 7)]
    torch.testing.assert_close(torch.cat([prefix, *rest], dim=1), full, atol=1e-5, rtol=0)


def test_cache_grows_by_one_position_per_step():
    decoder = _decoder(norm_first=False)
    cache = DecoderCache(decoder)
    memory = torch.randn(2, 1, D)
    assert cache.layers[0].self_attn.keys is None
    with torch.no_grad():
        for t in range(1, 4):
            decoder(torch.randn(2, 1, D), memory, cache=cache)
            for layer_cache in cache.layers:
                assert layer_cache.self_attn.keys.shape == (2, H, t, D // H)
                assert layer_cache.self_attn.values.shape == (2, H, t, D // H)
                assert layer_cache.cross_attn.keys.shape == (2, H, 1, D // H)  # computed once
    assert cache.length == 3


def _embed_and_project():
    target_proj, output_proj = nn.Linear(F_IN, D), nn.Linear(D, F_IN)
    table = torch.randn(64, D)

    def embed(x, offset):
        return target_proj(x) + table[offset : offset + x.shape[1]]

    return embed, output_proj


@pytest.mark.parametrize("norm_first", [False, True])
def test_cached_generation_equals_naive_generation(norm_first):
    decoder = _decoder(norm_first, final_norm=norm_first)
    embed, project = _embed_and_project()
    memory, start = torch.randn(5, 1, D), torch.zeros(5, 1, F_IN)
    with torch.no_grad():
        naive = generate(decoder, memory, start, 30, embed, project, cached=False)
        cached = generate(decoder, memory, start, 30, embed, project, cached=True)
    assert naive.shape == cached.shape == (5, 30, F_IN)
    assert (naive - cached).abs().max().item() <= 1e-5


def test_naive_generation_feeds_each_output_back():
    decoder = _decoder(norm_first=False)
    embed, project = _embed_and_project()
    memory, start = torch.randn(2, 1, D), torch.zeros(2, 1, F_IN)
    with torch.no_grad():
        out = generate(decoder, memory, start, 4, embed, project, cached=False)
        inputs = torch.cat([start, out[:, :3]], dim=1)  # (B, 4, F): start, then outputs 0..2
        teacher_forced = project(decoder(embed(inputs, 0), memory,
                                         self_attn_mask=masks.causal_mask(4)))
    torch.testing.assert_close(out, teacher_forced, atol=1e-6, rtol=0)


def test_a_cache_serves_only_its_own_decoder_and_weights():
    decoder, other = _decoder(norm_first=False), _decoder(norm_first=False)
    memory = torch.randn(2, 1, D)
    cache = DecoderCache(decoder)
    with torch.no_grad():
        decoder(torch.randn(2, 1, D), memory, cache=cache)
    with pytest.raises(ValueError, match="another decoder"):
        other(torch.randn(2, 1, D), memory, cache=cache)
    with torch.no_grad():
        decoder.layers[0].self_attn.q_proj.weight.add_(0.1)  # what an optimiser step does
    with pytest.raises(ValueError, match="weights changed"):
        decoder(torch.randn(2, 1, D), memory, cache=cache)
    fresh = DecoderCache(decoder)
    decoder.load_state_dict(other.state_dict())
    with pytest.raises(ValueError, match="weights changed"):
        decoder(torch.randn(2, 1, D), memory, cache=fresh)


def test_bad_inputs():
    decoder = _decoder(norm_first=False)
    memory = torch.randn(2, 1, D)
    cache = DecoderCache(decoder)
    with torch.no_grad():
        decoder(torch.randn(2, 1, D), memory, cache=cache)
    with pytest.raises(ValueError, match="batch of 2 sequences, but query has B=3"):
        decoder(torch.randn(3, 1, D), torch.randn(3, 1, D), cache=cache)
    with pytest.raises(TypeError, match="decoder must be a tvae_lib Decoder"):
        DecoderCache(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="cache must be a KVCache"):
        decoder.layers[0].self_attn(memory, memory, memory, cache={"keys": None})
    with pytest.raises(ValueError, match="steps must be a positive int"):
        generate(decoder, memory, torch.zeros(2, 1, F_IN), 0, *_embed_and_project())
    with pytest.raises(TypeError, match="steps must be an int"):
        generate(decoder, memory, torch.zeros(2, 1, F_IN), True, *_embed_and_project())
    with pytest.raises(ValueError, match=r"start must have shape \(B=2, 1, F\)"):
        generate(decoder, memory, torch.zeros(3, 1, F_IN), 2, *_embed_and_project())
    assert KVCache().length == 0


def _tvae(**changes) -> TransformerVAE:
    return TransformerVAE(TVAEConfig(n_features=3, d_model=16, n_heads=4, d_ff=32,
                                     latent_dim=2, max_len=40, **changes))  # fmt: skip


def test_free_run_cached_equals_naive_and_keeps_the_mode():
    model = _tvae(dropout=0.1).eval()
    z = torch.randn(4, 2)
    with torch.no_grad():
        cached = model.free_run(z, 40)
        naive = model.free_run(z, 40, cached=False)
    assert cached.shape == naive.shape == (4, 40, 3)
    assert (cached - naive).abs().max().item() <= 1e-5
    assert not model.training
    with pytest.raises(ValueError, match=r"T=41 is outside \[1, max_len=40\]"):
        model.free_run(z, 41)


def test_free_run_carries_gradients():
    model = _tvae().train()
    z = torch.randn(3, 2, requires_grad=True)
    rolled = model.free_run(z, 12)
    assert model.training
    with torch.no_grad():
        torch.testing.assert_close(rolled.detach(), model.free_run(z.detach(), 12))
    rolled.pow(2).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert model.target_proj.weight.grad.abs().sum() > 0  # the fed-back inputs are trained too


@pytest.mark.parametrize("training", [False, True])
def test_free_run_embeds_and_projects_with_the_bits_of_the_modules(training):
    # free_run calls the embedding's and projection's arithmetic without the module calls;
    # outputs and gradients must be the modules' own, bit for bit
    model = _tvae().train(training)
    z = torch.randn(3, 2, requires_grad=True)
    start = torch.zeros(3, 1, 3)
    _assert_same_bits_and_gradients(model, z, (
        lambda: model.free_run(z, 15),
        lambda: generate(model.decoder, model.memory(z), start, 15, model._embed_targets,
                         model.output_proj),
    ))  # fmt: skip


def _assert_same_bits_and_gradients(model, z, runs):
    """Both runs (15 steps of 3 channels from z) give the same outputs and, for the same loss,
    the same gradients of every weight and of z, bit for bit."""
    weights = torch.randn(1, 15, 3)
    results = []
    for run in runs:
        model.zero_grad()
        z.grad = None
        out = run()
        (out * weights).sum().backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        results.append((out.detach(), [*grads, z.grad.clone()]))
    (lean, lean_grads), (reference, reference_grads) = results
    assert torch.equal(lean, reference)
    assert len(lean_grads) == len(reference_grads) > 10
    assert all(torch.equal(a, b) for a, b in zip(lean_grads, reference_grads, strict=True))


def test_free_run_keeps_the_module_calls_a_hook_needs():
    model = _tvae().eval()
    seen = []
    hook = model.output_proj.register_forward_hook(
        lambda module, inputs, output: seen.append(output.shape[1]))
    try:
        with torch.no_grad():
            model.free_run(torch.randn(2, 2), 9)
    finally:
        hook.remove()
    assert seen == [1] * 9  # the hook saw every step


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_free_running_paths_in_other_dtypes(dtype):
    model = _tvae().to(dtype).eval()
    x = torch.randn(2, 10, 3, dtype=dtype)
    for out in (model.reconstruct(x), model.generate(2, 10),
                model.generate(2, lengths=torch.tensor([4, 10]))):  # fmt: skip
        assert out.dtype == dtype and out.shape == (2, 10, 3) and torch.isfinite(out).all()
    with torch.no_grad():
        cached, naive = model.free_run(model.encode(x)[0], 10), model.free_run(
            model.encode(x)[0], 10, cached=False)  # fmt: skip
    tolerance = 1e-10 if dtype == torch.float64 else 0.1
    assert (cached - naive).abs().max().item() <= tolerance
    with pytest.raises(TypeError, match="dtype torch.float32 but the model's weights"):
        model.encode(torch.randn(2, 10, 3))


def test_weights_derived_without_autograd_are_made_again_with_it():
    decoder = _decoder(norm_first=False)
    memory = torch.randn(2, 1, D)
    cache = DecoderCache(decoder)
    with torch.no_grad():  # fused projection, memory keys and values made without autograd
        decoder(torch.randn(2, 1, D), memory, cache=cache)
    out = decoder(torch.randn(2, 1, D), memory, cache=cache)
    (out * torch.randn_like(out)).sum().backward()
    layer = decoder.layers[0]
    # (one memory key has weight 1 whatever q and k are: only v and out reach the output)
    for weight in (layer.self_attn.q_proj.weight, layer.self_attn.k_proj.weight,
                   layer.self_attn.v_proj.weight, layer.cross_attn.v_proj.weight,
                   layer.cross_attn.out_proj.weight):  # fmt: skip
        assert weight.grad is not None and weight.grad.abs().sum() > 0


def test_decoder_cache_capacity_must_be_a_count():
    with pytest.raises(ValueError, match="capacity"):
        DecoderCache(_decoder(norm_first=False), capacity=-1)


def test_cached_and_naive_free_running_give_the_same_gradients():
    model = _tvae().train()
    z = torch.randn(3, 2)
    weights = torch.linspace(-1, 1, 12 * 3).view(1, 12, 3)
    grads = []
    for cached in (True, False):
        model.zero_grad()
        (model.free_run(z, 12, cached=cached) * weights).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for cached_grad, naive_grad in zip(*grads, strict=True):
        torch.testing.assert_close(cached_grad, naive_grad, atol=1e-5, rtol=1e-4)


def _layer_by_layer(decoder, memory, start, steps, embed, project, padding=None):
    """generate's cached loop written out through the layers' own forward, step by step."""
    cache, current, outputs = DecoderCache(decoder, capacity=steps), start, []
    for t in range(steps):
        hidden = decoder(embed(current, t), memory, cache=cache, memory_key_padding_mask=padding)
        current = project(hidden)
        outputs.append(current)
    return torch.cat(outputs, dim=1)


@pytest.mark.parametrize("norm_first, memory_length", [(False, 1), (True, 1), (False, 4)])
def test_lean_steps_give_the_bits_of_the_layers_forward(norm_first, memory_length):
    # Without autograd, generate runs steps 2.. through _lean_step, which calls the weights
    # directly; it must repeat the layers' arithmetic exactly, not just closely.
    decoder = _decoder(norm_first, final_norm=norm_first)
    embed, project = _embed_and_project()
    memory, start = torch.randn(5, memory_length, D), torch.zeros(5, 1, F_IN)
    padding = None if memory_length == 1 else masks.padding_mask(torch.tensor([4, 1, 2, 4, 3]),
                                                                  max_len=4)  # fmt: skip
    with torch.no_grad():
        lean = generate(decoder, memory, start, 20, embed, project,
                        memory_key_padding_mask=padding)  # fmt: skip
        reference = _layer_by_layer(decoder, memory, start, 20, embed, project, padding)
    assert torch.equal(lean, reference)
    assert not lean.is_inference()  # an ordinary tensor, usable later with autograd
    (nn.Linear(F_IN, 1)(lean) ** 2).sum().backward()


def test_lean_steps_attend_by_matrix_products_only_without_gradients(monkeypatch):
    calls = []

    def spy(q, k, v):
        calls.append(k.shape[2])
        return attend_one_query(q, k, v)

    monkeypatch.setattr(decoding, "attend_one_query", spy)
    decoder = _decoder(norm_first=True, final_norm=True)
    decoder.layers[0].norm1 = nn.RMSNorm(D)  # another normalisation: called as it is
    embed, project = _embed_and_project()
    memory, start = torch.randn(2, 1, D), torch.zeros(2, 1, F_IN)
    with torch.no_grad():
        lean = generate(decoder, memory, start, 6, embed, project)
        reference = _layer_by_layer(decoder, memory, start, 6, embed, project)
    assert torch.equal(lean, reference)
    assert calls == [2, 2, 3, 3, 4, 4, 5, 5, 6, 6]  # two layers, steps 2 to 6
    generate(decoder, memory, start, 6, embed, project)  # autograd on: the fused kernel
    assert len(calls) == 10


def test_hooks_and_active_dropout_keep_the_layers_forward():
    decoder = _decoder(norm_first=False)  # dropout 0.1 in every layer
    embed, project = _embed_and_project()
    memory, start = torch.randn(3, 1, D), torch.zeros(3, 1, F_IN)
    seen = []
    hook = decoder.layers[1].feed_forward.register_forward_hook(
        lambda module, inputs, output: seen.append(inputs[0].shape[1]))
    try:
        with torch.no_grad():
            generate(decoder, memory, start, 7, embed, project)
    finally:
        hook.remove()
    assert seen == [1] * 7  # the hook saw every step, not only the first
    decoder.train()  # dropout active: every step must draw its masks as the layers do
    with torch.no_grad():
        torch.manual_seed(3)
        dropped = generate(decoder, memory, start, 7, embed, project)
        torch.manual_seed(3)
        reference = _layer_by_layer(decoder, memory, start, 7, embed, project)
    assert torch.equal(dropped, reference)


def test_lean_steps_record_the_gradients_of_the_layers_forward():
    # Training on the decoder's own outputs (autograd on) also takes the lean steps: the
    # outputs and every gradient must be the very bits the layers' forward gives.
    model = _tvae().train()  # no dropout: a plain decoder, lean in training too
    z = torch.randn(3, 2, requires_grad=True)
    embed, project = model._embed_targets, model.output_proj
    start = torch.zeros(3, 1, 3)
    _assert_same_bits_and_gradients(model, z, [
        functools.partial(run, model.decoder, model.memory(z), start, 15, embed, project)
        for run in (generate, _layer_by_layer)
    ])  # fmt: skip
