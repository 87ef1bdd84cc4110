import pytest
import torch

from tvae_lib import addition
from tvae_lib.seq2seq import seq2seq_step
from tvae_lib.transformer_seq2seq import TransformerSeq2Seq, TransformerSeq2SeqConfig


def _model(**changes) -> TransformerSeq2Seq:
    torch.manual_seed(0)
    sizes = dict(d_model=16, n_heads=2, d_ff=32, n_layers=1, max_len=8) | changes
    config = TransformerSeq2SeqConfig(len(addition.VOCAB), addition.START_ID, addition.PAD_ID,
                                      **sizes)  # fmt: skip
    return TransformerSeq2Seq(config).eval()


def _batch(n: int = 6):
    data = addition.load_addition(n=n + 1, n_test=1)
    return data.x_train, data.t_train  # (B, 7), (B, 5)


def test_shapes_and_causality():
    model = _model()
    src, tgt = _batch()
    logits = model(src, tgt[:, :-1])
    assert logits.shape == (6, 4, len(addition.VOCAB))
    changed = tgt.clone()
    changed[:, 3] = addition.START_ID  # a later input cannot change an earlier output
    torch.testing.assert_close(model(src, changed[:, :-1])[:, :3], logits[:, :3])


def test_greedy_decoding_cached_naive_and_teacher_forced_agree():
    model = _model()
    src, _ = _batch()
    ids, weights = model.generate(src, max_len=4)
    assert ids.shape == (6, 4) and weights is None
    assert torch.equal(model.generate(src, max_len=4, cached=False)[0], ids)
    start = torch.full((6, 1), addition.START_ID)
    logits = model(src, torch.cat([start, ids[:, :-1]], dim=1))
    assert torch.equal(logits.argmax(-1), ids)


def test_source_padding_cannot_reach_the_output():
    """Each question gives the same memory and logits padded or cut to its own length."""
    model = _model()
    src, tgt = _batch()  # padded at the end: "83+7   "
    memory, mask = model.encode(src)
    assert torch.equal(mask, src != addition.PAD_ID) and not mask.all()
    logits = model(src, tgt[:, :-1])
    for i, length in enumerate(mask.sum(dim=1).tolist()):
        alone, alone_mask = model.encode(src[i : i + 1, :length])
        assert alone_mask.all()
        torch.testing.assert_close(alone[0], memory[i, :length])
        torch.testing.assert_close(model(src[i : i + 1, :length], tgt[i : i + 1, :-1])[0],
                                   logits[i])  # fmt: skip


def test_step_trains_with_label_smoothing():
    model = _model().train()
    src, tgt = _batch()
    plain = seq2seq_step(model, (src, tgt))["loss"]
    smooth = seq2seq_step(model, (src, tgt), label_smoothing=0.1)["loss"]
    assert smooth.item() != pytest.approx(plain.item())
    smooth.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    assert 0.0 <= seq2seq_step(model, (src, tgt))["exact_match"].item() <= 1.0


@pytest.mark.parametrize(
    "changes, error, match",
    [
        (dict(d_model=10, n_heads=4), ValueError, "multiple of n_heads"),
        (dict(n_layers=0), ValueError, "n_layers must be"),
        (dict(dropout=1.5), ValueError, "dropout"),
    ],
)
def test_bad_config(changes, error, match):
    with pytest.raises(error, match=match):
        _model(**changes)


def test_bad_inputs():
    model = _model()
    src, tgt = _batch()
    with pytest.raises(ValueError, match="src must be an int64 tensor"):
        model(src.float(), tgt[:, :-1])
    with pytest.raises(ValueError, match="must share B"):
        model(src, tgt[:3, :-1])
    with pytest.raises(ValueError, match="max_len must be"):
        model.generate(src, 0)
    with pytest.raises(TypeError, match="config must be"):
        TransformerSeq2Seq({"vocab_size": 5})
