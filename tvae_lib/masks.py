"""Attention masks, in one convention.

**The library's convention: a boolean mask is ``True`` where attention is allowed** (a real,
non-padded step; a key that a query may look at). This is the convention of
``torch.nn.functional.scaled_dot_product_attention``. ``torch.nn.Transformer`` and
``torch.nn.MultiheadAttention`` use the opposite one (``True`` = blocked); :func:`to_blocked`
is the one place where the library converts between them.

Shapes: B batch, T target (query) length, S source (key) length.
"""

from __future__ import annotations

import torch

from tvae_lib.checks import positive_int

__all__ = [
    "causal_mask",
    "padding_mask",
    "to_blocked",
    "to_additive",
    "merge_masks",
    "masked_mean",
    "masked_mse",
    "random_hidden_steps",
]


def causal_mask(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The look-ahead mask: position ``t`` may attend to positions ``0..t`` only.

    Args:
        size: Sequence length T.
        device: Where to create the mask.

    Returns:
        Bool tensor of shape (T, T), ``True`` on and below the diagonal (allowed).

    Example:
        >>> causal_mask(3).int()
        tensor([[1, 0, 0],
                [1, 1, 0],
                [1, 1, 1]], dtype=torch.int32)
    """
    positive_int("size", size)
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()


def padding_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """Which steps of a padded batch are real.

    Args:
        lengths: Int tensor of shape (B,), the true length of each sequence.
        max_len: The padded length T; defaults to ``lengths.max()``.

    Returns:
        Bool tensor of shape (B, T), ``True`` at real steps and ``False`` at padding.
    """
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(
            f"lengths must be a 1-D integer tensor of shape (B,), got dtype {lengths.dtype} "
            f"and shape {tuple(lengths.shape)}"
        )
    if lengths.numel() == 0:
        raise ValueError("lengths is empty: expected shape (B,) with B >= 1")
    longest = int(lengths.max())
    max_len = longest if max_len is None else max_len
    if int(lengths.min()) < 1 or longest > max_len:
        raise ValueError(
            f"lengths must lie in [1, max_len={max_len}], got min {int(lengths.min())} "
            f"and max {longest}"
        )
    steps = torch.arange(max_len, device=lengths.device)  # (T,)
    return steps[None, :] < lengths[:, None]  # (B, T)


def to_blocked(mask: torch.Tensor) -> torch.Tensor:
    """Convert an allowed-mask to PyTorch ``nn.Transformer``'s convention (``True`` = blocked).

    Use it for ``mask``/``src_key_padding_mask``/``tgt_key_padding_mask``/
    ``memory_key_padding_mask`` of ``torch.nn.Transformer*`` and for ``attn_mask``/
    ``key_padding_mask`` of ``torch.nn.MultiheadAttention``.
    """
    _check_bool("mask", mask)
    return ~mask


def to_additive(mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Convert an allowed-mask to an additive float mask: 0 where allowed, ``-inf`` where not."""
    _check_bool("mask", mask)
    additive = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return additive.masked_fill(~mask, float("-inf"))


def merge_masks(
    attn_mask: torch.Tensor | None,
    key_padding_mask: torch.Tensor | None,
) -> torch.Tensor | None:
    """Combine a (T, S) attention mask and a (B, S) key padding mask into one allowed-mask.

    Args:
        attn_mask: Bool (T, S) or (B, T, S), ``True`` = allowed, or ``None``.
        key_padding_mask: Bool (B, S), ``True`` at real keys, or ``None``.

    Returns:
        A bool tensor that broadcasts to (B, H, T, S), shaped (T, S), (B, 1, T, S) or
        (B, 1, 1, S), or ``None`` when both are ``None``.
    """
    if attn_mask is not None:
        _check_bool("attn_mask", attn_mask)
        if attn_mask.dim() == 3:
            attn_mask = attn_mask[:, None]  # (B, 1, T, S)
        elif attn_mask.dim() != 2:
            raise ValueError(
                f"attn_mask must have shape (T, S) or (B, T, S), got {tuple(attn_mask.shape)}"
            )
    if key_padding_mask is not None:
        _check_bool("key_padding_mask", key_padding_mask)
        if key_padding_mask.dim() != 2:
            raise ValueError(
                f"key_padding_mask must have shape (B, S), got {tuple(key_padding_mask.shape)}"
            )
        key_padding_mask = key_padding_mask[:, None, None, :]  # (B, 1, 1, S)
    if attn_mask is None:
        return key_padding_mask
    if key_padding_mask is None:
        return attn_mask
    return attn_mask & key_padding_mask  # (B, 1, T, S)


def _check_steps(name: str, x: torch.Tensor, mask: torch.Tensor) -> None:
    _check_bool("mask", mask)
    if x.dim() < 2 or tuple(mask.shape) != tuple(x.shape[:2]):
        raise ValueError(
            f"mask must have shape (B, T) = {tuple(x.shape[:2])} to match {name} (B, T, ...), "
            f"got {tuple(mask.shape)}"
        )


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over time of the real steps only (padding is left out, not averaged in).

    Args:
        x: (B, T, F) values.
        mask: (B, T) bool, ``True`` at real steps; every row needs at least one.

    Returns:
        (B, F), for each sequence the mean of ``x`` over its real steps. Whatever the
        padded steps hold (NaN, inf) does not reach the result.
    """
    _check_steps("x", x, mask)
    if not bool(mask.any(dim=1).all()):
        raise ValueError("mask has a row with no real step; its mean over time is undefined")
    mask = mask.reshape(*mask.shape, *([1] * (x.dim() - 2)))  # (B, T, 1, ...)
    total = torch.where(mask, x, 0.0).sum(dim=1)  # (B, F): padding adds nothing, even NaN
    return total / mask.sum(dim=1).to(x.dtype)  # (B, F)


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the selected steps only.

    Every selected step counts once, whichever sequence it belongs to, so a long sequence
    weighs more than a short one (as in a token-level language-model loss).

    Args:
        prediction: (B, T, F).
        target: (B, T, F).
        mask: (B, T) bool, ``True`` at the steps that count (real steps, or hidden ones).

    Returns:
        A scalar, the mean of ``(prediction - target)**2`` over the selected steps and all F.
    """
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction and target must have the same shape (B, T, F), got "
            f"{tuple(prediction.shape)} and {tuple(target.shape)}"
        )
    _check_steps("prediction", prediction, mask)
    if not bool(mask.any()):
        raise ValueError("mask selects no step; the loss would be 0 / 0")
    steps = mask.reshape(*mask.shape, *([1] * (prediction.dim() - 2)))  # (B, T, 1, ...)
    # where() before squaring: a NaN at a padded step gets neither a value nor a gradient
    difference = torch.where(steps, prediction - target, 0.0)
    squared = difference.pow(2).mean(dim=tuple(range(2, prediction.dim())))  # (B, T)
    return squared[mask].mean()


def random_hidden_steps(
    valid: torch.Tensor,
    ratio: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick steps to hide for a BERT-style masked-reconstruction task.

    In each sequence, ``max(1, round(ratio * length))`` of its real steps are drawn uniformly
    without replacement. Padding is never picked.

    Args:
        valid: (B, T) bool, ``True`` at real steps (e.g. :func:`padding_mask`).
        ratio: Share of each sequence's real steps to hide, in (0, 1].
        generator: Optional ``torch.Generator`` for reproducible draws (on ``valid``'s device).

    Returns:
        (B, T) bool, ``True`` at the hidden steps (a selection, not an attention mask).
    """
    _check_bool("valid", valid)
    if valid.dim() != 2:
        raise ValueError(f"valid must have shape (B, T), got {tuple(valid.shape)}")
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio must lie in (0, 1], got {ratio!r}")
    lengths = valid.sum(dim=1)  # (B,)
    if int(lengths.min()) < 1:
        raise ValueError("valid has a row with no real step; there is nothing to hide")
    n_hidden = (lengths * ratio).round().clamp(min=1)  # (B,)
    noise = torch.rand(valid.shape, generator=generator, device=valid.device)  # (B, T)
    noise = noise.masked_fill(~valid, 2.0)  # padding sorts last, is never picked
    rank = noise.argsort(dim=1).argsort(dim=1)  # (B, T): 0 for the smallest noise
    return rank < n_hidden[:, None]  # (B, T)


def _check_bool(name: str, mask: torch.Tensor) -> None:
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise TypeError(f"{name} must be a bool tensor (True = allowed), got {got}")
