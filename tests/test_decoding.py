import pytest
import torch
from torch import nn

from tvae_lib import masks
from tvae_lib.decoding import DecoderCache, decoder_step, generate, generate_tvae, rollout_tvae
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
    full = decoder(x, memory, self_attn_mask=masks.causal_mask(9),
                   memory_key_padding_mask=memory_padding)  # (B, T, D)
    cache = DecoderCache(decoder, memory, memory_key_padding_mask=memory_padding)
    with torch.no_grad():
        steps = [decoder_step(decoder, x[:, t : t + 1], cache) for t in range(9)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)
    assert cache.length == 9


def test_cache_grows_by_one_position_per_step():
    decoder = _decoder(norm_first=False)
    cache = DecoderCache(decoder, torch.randn(2, 1, D))
    assert cache.layers[0].self_keys is None
    assert cache.layers[0].cross_keys.shape == (2, H, 1, D // H)  # computed once
    with torch.no_grad():
        for t in range(1, 4):
            decoder_step(decoder, torch.randn(2, 1, D), cache)
            for layer_cache in cache.layers:
                assert layer_cache.self_keys.shape == (2, H, t, D // H)
                assert layer_cache.self_values.shape == (2, H, t, D // H)


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
    naive = generate(decoder, memory, start, 30, embed, project, cached=False)
    cached = generate(decoder, memory, start, 30, embed, project, cached=True)
    assert naive.shape == cached.shape == (5, 30, F_IN)
    assert (naive - cached).abs().max().item() <= 1e-5


def test_naive_generation_feeds_each_output_back():
    decoder = _decoder(norm_first=False)
    embed, project = _embed_and_project()
    memory, start = torch.randn(2, 1, D), torch.zeros(2, 1, F_IN)
    out = generate(decoder, memory, start, 4, embed, project, cached=False)
    inputs = torch.cat([start, out[:, :3]], dim=1)  # (B, 4, F): start, then outputs 0..2
    with torch.no_grad():
        teacher_forced = project(decoder(embed(inputs, 0), memory,
                                         self_attn_mask=masks.causal_mask(4)))
    torch.testing.assert_close(out, teacher_forced, atol=1e-6, rtol=0)


def test_bad_inputs():
    decoder = _decoder(norm_first=False)
    memory = torch.randn(2, 1, D)
    cache = DecoderCache(decoder, memory)
    with pytest.raises(ValueError, match=r"x must have shape \(B=2, 1, D\)"):
        decoder_step(decoder, torch.randn(2, 3, D), cache)
    with pytest.raises(ValueError, match="memory must have shape"):
        DecoderCache(decoder, torch.randn(2, D))
    with pytest.raises(ValueError, match="memory_key_padding_mask must be bool"):
        DecoderCache(decoder, memory, memory_key_padding_mask=torch.ones(2, 1))
    with pytest.raises(TypeError, match="decoder must be a tvae_lib Decoder"):
        DecoderCache(nn.Linear(2, 2), memory)
    with pytest.raises(ValueError, match="cache must be a DecoderCache"):
        decoder_step(_decoder(False, n_layers=3), torch.randn(2, 1, D), cache)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        generate(decoder, memory, torch.zeros(2, 1, F_IN), 0, *_embed_and_project())
    decoder.train()
    with pytest.raises(ValueError, match="evaluation mode"):
        decoder_step(decoder, torch.randn(2, 1, D), cache)


def test_generate_tvae_equals_the_models_naive_loop():
    model = TransformerVAE(TVAEConfig(n_features=3, d_model=16, n_heads=4, d_ff=32,
                                      latent_dim=2, max_len=40, dropout=0.1)).train()
    z = torch.randn(4, 2)
    cached = generate_tvae(model, z, 40)
    assert model.training  # the mode is restored
    naive = model.eval().decode_autoregressive(z, 40)
    assert cached.shape == naive.shape == (4, 40, 3)
    assert (cached - naive).abs().max().item() <= 1e-5
    with pytest.raises(ValueError, match=r"length must be an int in \[1, max_len=40\]"):
        generate_tvae(model, z, 41)


def test_rollout_tvae_equals_generation_and_carries_gradients():
    model = TransformerVAE(TVAEConfig(n_features=3, d_model=16, n_heads=4, d_ff=32,
                                      latent_dim=2, max_len=12)).train()
    z = torch.randn(3, 2, requires_grad=True)
    rolled = rollout_tvae(model, z, 12)
    assert model.training and model.decoder.training  # the modes are restored
    torch.testing.assert_close(rolled.detach(), generate_tvae(model, z.detach(), 12))
    rolled.pow(2).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert model.target_proj.weight.grad.abs().sum() > 0  # the fed-back inputs are trained too
    with pytest.raises(ValueError, match=r"length must be an int in \[1, max_len=12\]"):
        rollout_tvae(model, z, 13)
