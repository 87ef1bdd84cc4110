"""PyTorch's own Transformer layers holding our layers' weights, for equivalence checks.

:mod:`tvae_lib.transformer` writes the encoder and decoder layers out to be read; PyTorch's
``nn.TransformerEncoderLayer`` and ``nn.TransformerDecoderLayer`` are the reference they must
agree with. Both use the same parameter layout (except that PyTorch fuses the query, key and
value projections into one ``in_proj_weight``), so :func:`to_torch_layer` can copy ours into
theirs and a test, or chapter 5, can compare the two number for number.
"""

from __future__ import annotations

import torch
from torch import nn

from tvae_lib.attention import MultiHeadAttention
from tvae_lib.transformer import DecoderLayer, EncoderLayer

__all__ = ["to_torch_layer"]


def _copy_attention(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    weights = [ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]
    theirs.in_proj_weight.copy_(torch.cat(weights))  # (3 D, D)
    theirs.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
    theirs.out_proj.load_state_dict(ours.out_proj.state_dict())


@torch.no_grad()
def to_torch_layer(
    layer: EncoderLayer | DecoderLayer,
) -> nn.TransformerEncoderLayer | nn.TransformerDecoderLayer:
    """PyTorch's own layer with the same weights, for equivalence checks.

    The result is batch-first, uses ReLU and LayerNorm eps 1e-5 like ours, and has the same
    dropout probability. Remember PyTorch's masks are ``True`` = blocked: pass
    ``masks.to_blocked(mask)``.

    Args:
        layer: An :class:`~tvae_lib.transformer.EncoderLayer` or
            :class:`~tvae_lib.transformer.DecoderLayer`.

    Returns:
        An ``nn.TransformerEncoderLayer`` or ``nn.TransformerDecoderLayer`` in the same
        training/evaluation mode and on the same device as ``layer``.
    """
    if not isinstance(layer, (EncoderLayer, DecoderLayer)):
        raise TypeError(f"layer must be an EncoderLayer or DecoderLayer, got {type(layer).__name__}")
    kwargs = dict(
        d_model=layer.d_model,
        nhead=layer.n_heads,
        dim_feedforward=layer.feed_forward.linear1.out_features,
        dropout=layer.dropout1.p,
        batch_first=True,
        norm_first=layer.norm_first,
    )
    device = layer.norm1.weight.device
    if isinstance(layer, EncoderLayer):
        theirs = nn.TransformerEncoderLayer(**kwargs).to(device)
    else:
        theirs = nn.TransformerDecoderLayer(**kwargs).to(device)
        _copy_attention(layer.cross_attn, theirs.multihead_attn)
        theirs.norm3.load_state_dict(layer.norm3.state_dict())
    _copy_attention(layer.self_attn, theirs.self_attn)
    theirs.linear1.load_state_dict(layer.feed_forward.linear1.state_dict())
    theirs.linear2.load_state_dict(layer.feed_forward.linear2.state_dict())
    theirs.norm1.load_state_dict(layer.norm1.state_dict())
    theirs.norm2.load_state_dict(layer.norm2.state_dict())
    return theirs.train(layer.training)

