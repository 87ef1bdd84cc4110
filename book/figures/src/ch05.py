"""Diagrams of chapter 5; run `python book/figures/src/make_figures.py` to rewrite them."""

from svglib import Figure


def post_pre_ln():
    f = Figure(
        "ch05_post_pre_ln", 820, 430,
        "Post-LN and pre-LN: where the LayerNorm sits around a sublayer",
        "Left, post-LN (norm_first=False, the library's default and the original paper): the "
        "sublayer's output, after dropout, is added to its input and the sum is normalised. "
        "Right, pre-LN (norm_first=True): the sublayer reads a normalised copy of its input and "
        "its output is added to the untouched input; a stack of pre-LN layers ends with one "
        "more LayerNorm.",
    )

    def column(cx, title, sub, order, formula, note):
        f.text(cx, 28, title, cls="bold")
        f.text(cx, 48, sub, cls="small mono")
        w = 200
        y = 316  # junction
        f.text(cx, 372, "x", cls="bold")
        f.line([(cx, 358), (cx, y)], arrow=False)
        f.dot(cx, y, r=3.5)
        tops = {}
        cur = y
        for kind in order:
            if kind == "add":
                ny = cur - 34
                f.arrow((cx, cur), (cx, ny + 12))
                f.node(cx, ny, "+", color="white", r=12, size=18)
                tops[kind] = ny
                cur = ny - 12
                continue
            h = {"sublayer": 46, "dropout": 26, "norm": 28}[kind]
            ny = cur - 22 - h
            f.arrow((cx, cur), (cx, ny + h + 2))
            label = {"sublayer": [("sublayer", "small bold"), ("attention or feed-forward", "small")],
                     "dropout": [("dropout", "small")],
                     "norm": [("LayerNorm", "small")]}[kind]
            color = {"sublayer": "green", "dropout": "white", "norm": "gray"}[kind]
            f.box(cx - w / 2, ny, w, h, color, label, rx=6, line_gap=16)
            cur = ny
        f.arrow((cx, cur), (cx, 70))
        f.text(cx + 10, 80, "output", anchor="start", cls="small")
        # residual
        ry = tops["add"]
        f.line([(cx, y), (cx - 130, y), (cx - 130, ry), (cx - 14, ry)], color="dark", width=1.8)
        f.text(cx - 136, (y + ry) / 2, "residual", anchor="end", cls="small muted")
        f.text(cx, 396 - 4, formula, cls="small mono")
        if note:
            f.text(cx + 110, 140, note[0], anchor="start", cls="small muted")
            f.text(cx + 110, 157, note[1], anchor="start", cls="small muted")
    column(220, "post-LN (the paper; the default)", "norm_first=False",
           ["sublayer", "dropout", "add", "norm"], "norm(x + dropout(sublayer(x)))", None)
    column(590, "pre-LN", "norm_first=True", ["norm", "sublayer", "dropout", "add"],
           "x + dropout(sublayer(norm(x)))", None)
    f.text(590, 416, "a pre-LN stack ends with one more LayerNorm (final_norm=True)", cls="small muted")
    return f


def layers():
    f = Figure(
        "ch05_transformer_layers", 880, 660,
        "The Transformer encoder layer and decoder layer, each stacked N times",
        "The encoder layer applies multi-head self-attention over the source, with its key "
        "padding mask, and a position-wise feed-forward network, each followed by a residual "
        "addition and a LayerNorm. The decoder layer applies masked self-attention over the "
        "target, cross-attention whose keys and values come from the encoder's output (the "
        "memory), and a feed-forward network, each with a residual addition and LayerNorm. "
        "The memory feeds the cross-attention of every decoder layer.",
    )

    def sublayer(cx, w, y_junction, box_top, box_h, color, lines, norm_top, side, in_label=None):
        """junction -> box -> Add & LayerNorm, with the residual line on the given side."""
        left = cx - w / 2
        f.dot(cx, y_junction, r=3.5)
        f.arrow((cx, y_junction), (cx, box_top + box_h + 2))
        f.box(left, box_top, w, box_h, color, lines, line_gap=17)
        f.box(left, norm_top, w, 26, "gray", [("Add & LayerNorm", "small")], rx=6)
        f.arrow((cx, box_top), (cx, norm_top + 28))
        rx = left - 30 if side == "left" else left + w + 30
        edge = left - 2 if side == "left" else left + w + 2
        f.line([(cx, y_junction), (rx, y_junction), (rx, norm_top + 13), (edge, norm_top + 13)], width=1.6)
        if in_label:
            f.text(cx + 8, y_junction - 6, in_label, anchor="start", cls="small muted")

    # ---------------------------------------------------------------- encoder
    ex, ew = 200, 220
    f.rect(50, 240, 300, 312, "blue", rx=12, extra=' style="fill-opacity: 0.35"')
    f.text(60, 232, "Encoder layer", anchor="start", cls="bold ink-blue")
    f.text(36, 400, "N \u00d7", anchor="end", cls="bold big")
    f.box(ex - 90, 582, 180, 34, "blue", [("(B, S, D)", "small mono")], rx=6)
    f.text(ex, 640, "source: embedding + positional encoding", cls="small")
    f.line([(ex, 582), (ex, 532)], arrow=False)
    sublayer(ex, ew, 532, 456, 52, "green", [("Multi-head self-attention", "small bold"),
             ("key_padding_mask (B, S)", "small mono ink-red")], 400, "left", "Q = K = V")
    f.line([(ex, 400), (ex, 382)], arrow=False)
    sublayer(ex, ew, 382, 312, 46, "white", [("Feed-forward", "small bold"),
             ("Linear \u2192 ReLU \u2192 Linear", "small")], 256, "left")
    # memory out
    f.line([(ex, 256), (ex, 196), (452, 196), (452, 336), (516, 336)], color="blue", width=2.2)
    f.text(ex + 10, 188, "memory (B, S, D)", anchor="start", cls="small mono ink-blue")
    f.text(ex + 10, 170, "the encoder's output", anchor="start", cls="small ink-blue")
    f.text(444, 262, "to every", anchor="end", cls="small ink-blue")
    f.text(444, 279, "decoder layer", anchor="end", cls="small ink-blue")
    f.text(478, 326, "K, V", cls="small ink-blue")

    # ---------------------------------------------------------------- decoder
    dx, dw = 640, 250
    f.rect(492, 100, 336, 452, "orange", rx=12, extra=' style="fill-opacity: 0.35"')
    f.text(502, 92, "Decoder layer", anchor="start", cls="bold ink-orange")
    f.text(842, 330, "\u00d7 N", anchor="start", cls="bold big")
    f.box(dx - 90, 582, 180, 34, "orange", [("(B, T, D)", "small mono")], rx=6)
    f.text(dx, 640, "target, shifted right: embedding + positional encoding", cls="small")
    f.line([(dx, 582), (dx, 532)], arrow=False)
    sublayer(dx, dw, 532, 456, 60, "green", [("Masked multi-head self-attention", "small bold"),
             ("self_attn_mask: causal (T, T)", "small mono ink-red"),
             ("key_padding_mask (B, T)", "small mono ink-red")], 400, "right")
    f.line([(dx, 400), (dx, 382)], arrow=False)
    sublayer(dx, dw, 382, 306, 60, "green", [("Multi-head cross-attention", "small bold"),
             ("Q from below, K = V = memory", "small"),
             ("memory_key_padding_mask (B, S)", "small mono ink-red")], 250, "right")
    f.line([(dx, 250), (dx, 232)], arrow=False)
    sublayer(dx, dw, 232, 170, 46, "white", [("Feed-forward", "small bold"),
             ("Linear \u2192 ReLU \u2192 Linear", "small")], 116, "right")
    f.arrow((dx, 116), (dx, 48))
    f.text(dx + 10, 70, "(B, T, D)", anchor="start", cls="small mono")
    f.text(dx, 30, "to the output projection", cls="small")

    f.text(30, 40, "post-LN drawn (norm_first=False,", anchor="start", cls="small muted")
    f.text(30, 58, "the default): add, then normalise.", anchor="start", cls="small muted")
    f.text(30, 76, "pre-LN (norm_first=True) moves each", anchor="start", cls="small muted")
    f.text(30, 94, "LayerNorm before its sublayer.", anchor="start", cls="small muted")
    return f
