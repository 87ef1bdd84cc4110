import torch
from torch import nn

from tvae_lib.kv_cache import KVCache
from tvae_lib.transformer import DecoderLayer

D, H, FF = 16, 4, 32


def test_kv_cache_buffer_grows_and_equals_concatenation():
    cache = KVCache(capacity=2)
    keys = [torch.randn(2, H, n, D // H) for n in (1, 1, 3, 1)]
    values = [torch.randn_like(k) for k in keys]
    for k, v in zip(keys, values, strict=True):
        cache.append(k, v)  # no gradient: written in place, room doubled when full
    torch.testing.assert_close(cache.keys, torch.cat(keys, dim=2), atol=0, rtol=0)
    torch.testing.assert_close(cache.values, torch.cat(values, dim=2), atol=0, rtol=0)
    assert cache.length == 6 and cache._buffers[0].shape[2] >= 6


def test_kv_cache_concatenates_when_recording_gradients():
    cache = KVCache(capacity=8)
    first = torch.randn(1, H, 1, D // H, requires_grad=True)
    second = torch.randn(1, H, 1, D // H, requires_grad=True)
    cache.append(first, first)
    cache.append(second, second)
    (cache.keys.sum() + cache.values.sum()).backward()
    torch.testing.assert_close(first.grad, torch.full_like(first, 2.0))
    torch.testing.assert_close(second.grad, torch.full_like(second, 2.0))


def test_one_memory_position_gives_the_same_cross_attention_output_for_every_query():
    attention = nn.Module.eval(DecoderLayer(D, H, FF).cross_attn)
    memory, cache = torch.randn(3, 1, D), KVCache(static=True)
    with torch.no_grad():
        first = attention(torch.randn(3, 1, D), memory, memory, cache=cache)[0]
        assert cache.output is not None  # a single unmasked key: the output is kept
        again = attention(torch.randn(3, 2, D), memory, memory, cache=cache)[0]
        plain = attention(torch.randn(3, 2, D), memory, memory)[0]  # no cache, no shortcut
    torch.testing.assert_close(again, first.expand(3, 2, D), atol=0, rtol=0)
    torch.testing.assert_close(plain, again, atol=1e-6, rtol=0)
    masked = KVCache(static=True)
    with torch.no_grad():
        attention(torch.randn(3, 1, D), memory, memory, cache=masked,
                  key_padding_mask=torch.tensor([[True], [False], [True]]))  # fmt: skip
    assert masked.output is None  # a mask makes the output depend on more than the key
