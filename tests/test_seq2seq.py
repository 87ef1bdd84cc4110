import pytest
import torch

from tvae_lib import addition, seq2seq, training
from tvae_lib.seq2seq import Seq2Seq, Seq2SeqConfig

DECODERS = ["plain", "peeky", "attention", "additive"]


def _model(decoder: str, hidden_size: int = 16) -> Seq2Seq:
    config = Seq2SeqConfig(
        vocab_size=len(addition.VOCAB),
        start_id=addition.START_ID,
        pad_id=addition.PAD_ID,
        embed_dim=8,
        hidden_size=hidden_size,
        decoder=decoder,
    )
    return Seq2Seq(config)


def _batch(batch_size: int = 6):
    data = addition.load_addition(n=batch_size + 1, n_test=1)
    return data.x_train, data.t_train


@pytest.mark.parametrize("decoder", DECODERS)
def test_shapes(decoder):
    model = _model(decoder)
    src, tgt = _batch()
    assert model(src, tgt[:, :-1]).shape == (6, 4, len(addition.VOCAB))
    memory, (h, c) = model.encoder(src)
    assert memory.outputs.shape == (6, 7, 16) and memory.context.shape == (6, 16)
    assert h.shape == c.shape == (1, 6, 16)
    torch.testing.assert_close(memory.context, memory.outputs[:, -1])
    ids, weights = model.generate(src, max_len=4)
    assert ids.shape == (6, 4) and ids.dtype == torch.long
    if decoder in ("attention", "additive"):
        assert weights.shape == (6, 4, 7)
    else:
        assert weights is None


@pytest.mark.parametrize("decoder", DECODERS)
def test_greedy_decoding_matches_teacher_forcing_on_its_own_output(decoder):
    """Step-by-step decoding with a carried state equals one parallel pass over its output."""
    model = _model(decoder).eval()
    src, _ = _batch()
    ids, weights = seq2seq.greedy_decode(model, src, max_len=4)
    start = torch.full((6, 1), addition.START_ID)
    tgt_in = torch.cat([start, ids[:, :-1]], dim=1)  # (B, T)
    logits = model(src, tgt_in)
    torch.testing.assert_close(logits.argmax(-1), ids)
    if weights is not None:
        memory, state = model.encoder(src)
        _, _, parallel_weights = model.decoder(tgt_in, state, memory)
        torch.testing.assert_close(weights, parallel_weights)


@pytest.mark.parametrize("decoder", ["attention", "additive"])
def test_attention_ignores_padding_and_rows_sum_to_one(decoder):
    model = _model(decoder).eval()
    src, _ = _batch()
    _, weights = model.generate(src, max_len=4)
    padding = src == addition.PAD_ID  # (B, S)
    assert padding.any()
    assert (weights.masked_select(padding[:, None, :].expand_as(weights)) == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(6, 4))


def test_peeky_decoder_uses_the_context_at_every_step():
    model = _model("peeky").eval()
    src, tgt = _batch()
    memory, state = model.encoder(src)
    logits, _, _ = model.decoder(tgt[:, :-1], state, memory)
    changed = memory._replace(context=torch.zeros_like(memory.context))
    other, _, _ = model.decoder(tgt[:, :-1], state, changed)
    assert not torch.allclose(logits[:, -1], other[:, -1])
    plain = _model("plain").eval()
    memory, state = plain.encoder(src)
    logits, _, _ = plain.decoder(tgt[:, :-1], state, memory)
    other, _, _ = plain.decoder(tgt[:, :-1], state, changed)
    torch.testing.assert_close(logits, other)  # the plain decoder never reads it


def test_exact_match_literal():
    predicted = torch.tensor([[1, 2, 11], [3, 4, 11], [5, 6, 7]])
    target = torch.tensor([[1, 2, 11], [3, 4, 5], [5, 6, 7]])
    assert seq2seq.exact_match(predicted, target).item() == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"same shape \(B, T\)"):
        seq2seq.exact_match(predicted, target[:, :2])


def test_step_reports_exact_match_only_in_evaluation():
    model = _model("plain")
    batch = _batch()
    assert set(seq2seq.seq2seq_step(model.train(), batch)) == {"loss", "char_acc"}
    out = seq2seq.seq2seq_step(model.eval(), batch)
    assert set(out) == {"loss", "char_acc", "exact_match"}
    assert 0.0 <= out["exact_match"].item() <= 1.0


def test_greedy_decoding_on_a_tiny_trained_model():
    """A small attention model learns to copy three digits; greedy decoding then gets them."""
    generator = torch.Generator().manual_seed(0)
    digits = torch.randint(0, 10, (1_200, 3), generator=generator)  # (N, 3)
    src = torch.cat([digits, torch.full((1_200, 1), addition.PAD_ID)], dim=1)  # (N, 4)
    tgt = torch.cat([torch.full((1_200, 1), addition.START_ID), digits], dim=1)  # (N, 4)
    model = _model("attention", hidden_size=32)
    train = addition.make_loader(src[:1_000], tgt[:1_000], 50, shuffle=True, generator=generator)
    history = training.fit(
        model,
        train,
        seq2seq.seq2seq_step,
        epochs=8,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        val_loader=[(src[1_000:], tgt[1_000:])],
        clip_grad_norm=1.0,
        progress=False,
    )
    assert history["val_exact_match"][-1] >= 0.95
    ids, weights = model.generate(src[1_000:], max_len=3)
    assert seq2seq.exact_match(ids, digits[1_000:]).item() >= 0.95
    # Copying, output step t looks hardest at source step t.
    assert (weights.mean(0).argmax(-1) == torch.arange(3)).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match="decoder must be one of"):
        _model("transformer")
    model = _model("plain")
    src, tgt = _batch()
    with pytest.raises(ValueError, match=r"src must be an int64 tensor of shape \(B, L\)"):
        model(src[0], tgt[:, :-1])
    with pytest.raises(ValueError, match="tgt_in must be an int64"):
        model(src, tgt[:, :-1].float())
    with pytest.raises(ValueError, match="must share B"):
        model(src, tgt[:3, :-1])
    with pytest.raises(ValueError, match="max_len must be a positive int"):
        seq2seq.greedy_decode(model, src, 0)
    with pytest.raises(ValueError, match="src must be an int64"):
        seq2seq.greedy_decode(model, [[1, 2]], 3)


def test_additive_decoder_has_only_the_additive_scorer():
    names = {name for name, _ in _model("additive").decoder.named_parameters()}
    assert {"additive.query_proj.weight", "additive.key_proj.weight", "additive.score.weight"} <= names
    assert not any(name.startswith("query_proj") for name in names)
    with pytest.raises(ValueError, match="score must be one of"):
        seq2seq.AttentionDecoder(5, 4, 8, score="cosine")
