"""Diagrams of chapter 2; run `python book/figures/src/make_figures.py` to rewrite them."""

import math

from svglib import Figure


def attention_seq2seq():
    f = Figure(
        "ch02_attention_seq2seq", 900, 470,
        "An LSTM encoder-decoder with attention, one decoder step",
        "At decoder step t the hidden state s_t is projected into a query q_t, scored against "
        "every encoder state h_j, the scores are turned into weights by a softmax over j "
        "(padding gets weight zero), and the weighted sum c_t of the encoder states is "
        "concatenated with s_t to predict the next character.",
    )
    enc_x = [30 + i * 56 for i in range(7)]
    cw = 46
    dec_x = [540 + j * 80 for j in range(4)]
    y_cell, y_tok = 320, 392
    px0, px1, py0, py1 = 22, 420, 130, 287
    weights = [0, 0, 0, 0.45, 0.05, 0.45, 0.05]

    # encoder
    for i, x in enumerate(enc_x):
        f.box(x, y_cell, cw, 40, "blue", [(f"h_{{{i + 1}}}", "")])
        if i:
            f.arrow((enc_x[i - 1] + cw, y_cell + 20), (x - 2, y_cell + 20))
        cx = x + cw / 2
        f.box(cx - 14, y_tok, 28, 28, "white", [("\u00b7\u00b7\u00b75+75"[i], "mono big")], rx=5)
        f.arrow((cx, y_tok), (cx, y_cell + 42))
        f.arrow((cx, y_cell), (cx, py1 + 2), color="blue")
    f.text((enc_x[0] + enc_x[-1] + cw) / 2, 448,
           "encoder states h_{j} of the reversed question, padding first", cls="small")
    f.text((enc_x[0] + enc_x[-1] + cw) / 2, 465, "memory.outputs (B, S, D): keys = values", cls="small mono")

    # the attention panel
    f.rect(px0, py0, px1 - px0, py1 - py0, "green", rx=10)
    f.text(px0, py0 - 10, "Attention over every encoder state", anchor="start", cls="bold ink-green")
    f.text(36, 156, "1. scores   e_{t,j} = q_{t} \u00b7 h_{j} / \u221aD", anchor="start", cls="small")
    f.text(36, 178, "2. weights  \u03b1_{t,j} = softmax over j of e_{t,j}", anchor="start", cls="small")
    f.text(36, 200, "3. context  c_{t} = \u03a3_{j} \u03b1_{t,j} h_{j}", anchor="start", cls="small")
    f.text(404, 200, "\u03b1: (B, T, S)", anchor="end", cls="small mono")
    base, tall = 276, 44
    for x, a in zip(enc_x, weights, strict=True):
        cx = x + cw / 2
        if a:
            h = max(3, a / 0.45 * tall)
            f.rect(cx - 11, base - h, 22, h, "green", rx=2, cls="thin")
            f.text(cx, base - h - 4, f"{a:.2f}".lstrip("0"), cls="small")
        else:
            f.text(cx, base - 4, "0", cls="small muted")
    f.line([(px0 + 8, base), (px1 - 8, base)], color="green", width=1, arrow=False)

    # initial state
    f.arrow((enc_x[-1] + cw, y_cell + 20), (dec_x[0] - 2, y_cell + 20), color="blue", width=2.2)
    f.text((enc_x[-1] + cw + dec_x[0]) / 2, y_cell + 38, "(h, c)", cls="small mono ink-blue")

    # decoder cells; step t is the second one (reads 6, writes 2)
    t = 1
    for j, x in enumerate(dec_x):
        extra = ' class="faded"' if j != t else ""
        f.raw(f"<g{extra}>")
        f.box(x, y_cell, cw, 40, "orange", [("s_{t}" if j == t else "LSTM", "small" if j != t else "")])
        cx = x + cw / 2
        f.box(cx - 14, y_tok, 28, 28, "white", [("_62\u00b7"[j], "mono big")], rx=5)
        f.arrow((cx, y_tok), (cx, y_cell + 42))
        f.raw("</g>")
        if j:
            f.arrow((dec_x[j - 1] + cw, y_cell + 20), (x - 2, y_cell + 20))
    f.text((dec_x[0] + dec_x[-1] + cw) / 2, 448, "decoder LSTM: step t reads 6 and writes 2", cls="small")
    f.text((dec_x[0] + dec_x[-1] + cw) / 2, 465, "(teacher forcing, all T steps at once)", cls="small muted")

    cx = dec_x[t] + cw / 2
    # query branch
    f.line([(cx, y_cell), (cx, 164)], color="orange", width=2, arrow=True)
    f.dot(cx, 296, r=3.5, ink="#e8710a")
    f.line([(cx, 296), (524, 296), (524, 244)], color="orange", width=1.8)
    f.box(448, 204, 100, 38, "gray", [("W s_{t}", "small"), ("query_proj", "small mono")], line_gap=16)
    f.arrow((448, 222), (px1 + 2, 222), color="green", width=1.8)
    f.text(434, 214, "q_{t}", cls="small")
    f.text(470, 262, "q (B, T, D)", cls="small mono")
    # context
    f.arrow((px1, 152), (cx - 14, 152), color="green", width=2.2)
    f.text(520, 144, "c_{t}  (B, T, D)", cls="small mono ink-green")
    f.node(cx, 152, "\u2016", color="white", r=12, size=14)
    f.text(cx + 18, 176, "[s_{t} ; c_{t}]", anchor="start", cls="small mono")
    f.box(cx - 110, 98, 220, 28, "orange", [("combine: tanh(Linear), 2D \u2192 D", "small")], rx=6)
    f.arrow((cx, 140), (cx, 128))
    f.box(cx - 110, 56, 220, 28, "orange", [("out: Linear, D \u2192 V logits", "small")], rx=6)
    f.arrow((cx, 98), (cx, 86))
    f.box(cx - 14, 10, 28, 28, "white", [("2", "mono big")], rx=5)
    f.arrow((cx, 56), (cx, 40))
    f.text(cx + 24, 30, "next character", anchor="start", cls="small")
    return f


def attention_step():
    f = Figure(
        "ch02_attention_step", 880, 420,
        "Scaled dot-product attention, one step at a time, with shapes",
        "Queries Q of shape (B, T, d_k) are multiplied by the transposed keys K of shape "
        "(B, S, d_k), giving a (B, T, S) table of scores, divided by the square root of d_k. "
        "A softmax over each row turns scores into weights that sum to one, and the weights "
        "times the values V (B, S, d_v) give the output (B, T, d_v). One query row is "
        "highlighted through the whole computation.",
    )
    c = 26  # cell size
    T, S, dk = 3, 5, 4
    hl = 1  # highlighted query row

    def grid(x, y, rows, cols, color, hl_row=None, hl_col=None, values=None, fills=None):
        for r in range(rows):
            for k in range(cols):
                strong = (hl_row is not None and r == hl_row) or (hl_col is not None and k == hl_col)
                extra = ""
                if fills is not None:
                    extra = f' style="fill: {fills[r][k]}"'
                f.rect(x + k * c, y + r * c, c, c, color, rx=0, cls="thin", extra=extra)
                if strong and fills is None:
                    ink = {"orange": "#ff7f0e", "green": "#2ca02c", "blue": "#1f77b4"}[color]
                    f.rect(x + k * c, y + r * c, c, c, color, rx=0, cls="thin",
                           extra=f' style="fill: {ink}; fill-opacity: 0.35"')
                if values is not None and values[r][k] != "":
                    f.text(x + k * c + c / 2, y + r * c + c / 2 + 4, values[r][k],
                           extra=' style="font-size: 10.5px"')

    # positions
    qx, qy = 40, 200
    sx, sy = 240, 200
    kx, ky = sx, sy - 30 - dk * c
    wx = 500
    vx, vy = 690, sy - 30 - S * c
    ox = vx

    f.text(40, 34, "Q = X_{q} W_{Q}", anchor="start", cls="mono")
    f.text(40, 56, "K = X_{kv} W_{K}", anchor="start", cls="mono")
    f.text(40, 78, "V = X_{kv} W_{V}", anchor="start", cls="mono")
    f.text(40, 104, "self-attention: X_{q} = X_{kv}", anchor="start", cls="small muted")

    # Q
    grid(qx, qy, T, dk, "orange", hl_row=hl)
    f.text(qx + dk * c / 2, qy - 8, "Q", cls="bold")
    f.text(qx + dk * c + 4, qy - 8, "d_{k}", cls="italic muted", anchor="start")
    f.text(qx - 10, qy + T * c / 2 + 5, "T", cls="italic muted", anchor="end")
    f.text(qx + dk * c / 2, qy + T * c + 20, "(B, T, d_{k})", cls="mono small")
    # K^T
    grid(kx, ky, dk, S, "blue")
    f.text(kx + S * c + 8, ky + dk * c / 2 - 4, "K^{T}: the keys, transposed", anchor="start", cls="small")
    f.text(kx - 8, ky + dk * c / 2 + 5, "d_{k}", cls="italic muted", anchor="end")
    f.text(kx + S * c + 8, ky + dk * c / 2 + 14, "K: (B, S, d_{k})", anchor="start", cls="mono small")
    f.text(kx + S * c / 2, ky - 8, "S", cls="italic muted")
    # scores
    score_row = [0.3, 1.9, 0.9, 0.6, -0.5]
    scores = [[""] * S, [f"{v:g}" for v in score_row], [""] * S]
    grid(sx, sy, T, S, "green", hl_row=hl, values=scores)
    f.text(sx + S * c / 2, sy + T * c + 20, "(B, T, S)", cls="mono small")
    f.text(sx + S * c / 2, sy + T * c + 40, "Q K^{T} / \u221ad_{k}", cls="mono small")
    f.text(sx + S * c / 2, sy + T * c + 58, "every query \u00b7 every key", cls="small muted")
    f.arrow((qx + dk * c + 6, qy + T * c / 2), (sx - 6, sy + T * c / 2))
    f.arrow((kx + S * c / 2, ky + dk * c + 4), (kx + S * c / 2, sy - 6))
    # softmax
    f.arrow((sx + S * c + 8, sy + T * c / 2), (wx - 8, sy + T * c / 2), color="green", width=2)
    f.text((sx + S * c + wx) / 2, sy + T * c / 2 - 10, "softmax", cls="small bold ink-green")
    f.text((sx + S * c + wx) / 2, sy + T * c / 2 + 22, "over each row", cls="small ink-green")
    exps = [math.exp(v) for v in score_row]
    w_row = [e / sum(exps) for e in exps]  # the softmax of the highlighted row of scores

    def shade(a):
        return f"rgba(44, 160, 44, {0.12 + 0.85 * a / max(w_row):.2f})"

    others = [[0.30, 0.10, 0.25, 0.20, 0.15], [0, 0, 0, 0, 0], [0.05, 0.15, 0.10, 0.60, 0.10]]
    fills = [[shade(v) for v in (w_row if r == hl else others[r])] for r in range(T)]
    vals = [[""] * S, [f"{v:.2f}".lstrip("0") for v in w_row], [""] * S]
    grid(wx, sy, T, S, "green", values=vals, fills=fills)
    f.rect(wx - 2, sy + hl * c - 2, S * c + 4, c + 4, "green", rx=2, extra=' style="fill: none; stroke-width: 2"')
    f.text(wx + S * c / 2, sy - 8, "weights", cls="bold")
    f.text(wx + S * c / 2, sy + T * c + 20, "(B, T, S)", cls="mono small")
    f.text(wx + S * c / 2, sy + T * c + 40, "each row sums to 1", cls="small muted")
    # V
    grid(vx, vy, S, dk, "blue")
    f.text(vx + dk * c + 10, vy + S * c / 2 + 5, "V", cls="bold", anchor="start")
    f.text(vx + dk * c + 10, vy + S * c / 2 + 24, "(B, S, d_{v})", cls="mono small", anchor="start")
    # output
    f.arrow((wx + S * c + 8, sy + T * c / 2), (ox - 8, sy + T * c / 2))
    f.text((wx + S * c + ox) / 2, sy + T * c / 2 - 10, "\u00d7 V", cls="small bold")
    f.arrow((vx + dk * c / 2, vy + S * c + 4), (vx + dk * c / 2, sy - 6))
    grid(ox, sy, T, dk, "orange", hl_row=hl)
    f.text(ox + dk * c + 10, sy + T * c / 2 + 5, "output", cls="bold", anchor="start")
    f.text(ox + dk * c / 2, sy + T * c + 20, "(B, T, d_{v})", cls="mono small")
    f.text(ox + dk * c / 2, sy + T * c + 40, "a weighted sum of", cls="small muted")
    f.text(ox + dk * c / 2, sy + T * c + 56, "the value rows", cls="small muted")

    f.text(460, 388, "Attention(Q, K, V) = softmax(Q K^{T} / \u221ad_{k}) V", cls="big")
    f.text(460, 410, "a mask (chapter 4) blocks chosen scores before the softmax", cls="small muted")
    return f


def multi_head():
    f = Figure(
        "ch02_multi_head", 900, 440,
        "Multi-head attention: split into heads, attend per head, concatenate, project",
        "The input (B, T, D) is projected into queries, keys and values of the same shape. "
        "split_heads views each as (B, T, H, Dh) and moves the heads to the front, (B, H, T, Dh). "
        "Scaled dot-product attention runs on every head at once, with weights (B, H, T, S). "
        "merge_heads moves the heads back and reshapes to (B, T, D), which is the "
        "concatenation of the heads, and out_proj mixes them.",
    )
    y_mid = 122
    # input
    f.box(20, y_mid - 30, 84, 60, "blue", [("x", "bold"), ("(B, T, D)", "small mono")])
    # projections
    names = ["q_proj", "k_proj", "v_proj"]
    ys = [y_mid - 70, y_mid, y_mid + 70]
    f.line([(104, y_mid), (118, y_mid)], arrow=False)
    f.dot(118, y_mid, r=3.5)
    for proj, y in zip(names, ys, strict=True):
        f.line([(118, y_mid), (118, y), (136, y)])
        f.box(138, y - 17, 76, 34, "gray", [(proj, "small mono")], rx=6)
        f.arrow((214, y), (242, y))
    f.text(176, ys[2] + 36, "each (B, T, D)", cls="small mono muted")
    # split heads
    f.box(244, y_mid - 92, 140, 184, "green",
          [("split_heads", "mono small bold"), ("", ""), ("view", "small mono"), ("(B, T, H, Dh)", "small mono"),
           ("", ""), ("transpose(1, 2)", "small mono"), ("(B, H, T, Dh)", "small mono")], line_gap=18)
    f.arrow((384, y_mid), (412, y_mid), width=2)
    # heads (stacked cards)
    for i in range(3, -1, -1):
        f.rect(414 + i * 8, y_mid - 62 - i * 8, 170, 124, "green", rx=8)
    cx = 499
    f.text(cx, y_mid - 34, "attention per head", cls="small bold")
    f.text(cx, y_mid - 12, "softmax(q k^{T}/\u221aDh) v", cls="small mono")
    f.text(cx, y_mid + 12, "H heads at once", cls="small muted")
    f.text(cx, y_mid + 34, "out (B, H, T, Dh)", cls="small mono")
    f.text(cx, y_mid + 52, "weights (B, H, T, S)", cls="small mono")
    f.arrow((608, y_mid), (636, y_mid), width=2)
    # merge heads
    f.box(638, y_mid - 72, 120, 144, "green",
          [("merge_heads", "mono small bold"), ("", ""), ("transpose(1, 2)", "small mono"),
           ("reshape", "small mono"), ("(B, T, D)", "small mono"), ("= the heads", "small"),
           ("concatenated", "small")], line_gap=17)
    f.arrow((758, y_mid), (776, y_mid))
    f.box(778, y_mid - 17, 90, 34, "gray", [("out_proj", "small mono")], rx=6)
    f.arrow((823, y_mid + 17), (823, y_mid + 56))
    f.box(779, y_mid + 58, 88, 44, "orange", [("output", "small bold"), ("(B, T, D)", "small mono")], rx=6)

    # bottom band: one step's vector, D = 16, H = 4
    top = 272
    f.line([(20, top - 22), (880, top - 22)], color="gray", width=1, arrow=False, dashed=True)
    f.text(20, top, "What the reshapes do to one step's query vector (D = 16, H = 4, Dh = 4):",
           anchor="start", cls="small bold")
    colors = ["#17becf", "#bcbd22", "#e377c2", "#8c564b"]
    cc = 13
    y0 = top + 48

    def cells(x, y, n, color_of, opacity):
        for k in range(n):
            f.rect(x + k * cc, y, cc, cc, "white", rx=0, cls="thin",
                   extra=f' style="fill: {color_of(k)}; fill-opacity: {opacity}"')

    x0 = 30
    cells(x0, y0, 16, lambda k: colors[k // 4], 0.45)
    f.text(x0 + 8 * cc, y0 - 10, "q of one step: D numbers", cls="small")
    f.arrow((x0 + 16 * cc + 8, y0 + 6), (x0 + 16 * cc + 52, y0 + 6))
    f.text(x0 + 16 * cc + 30, y0 - 6, "view", cls="small mono")
    hx = x0 + 16 * cc + 62
    for h in range(4):
        cells(hx, y0 - 27 + h * 20, 4, lambda k, h=h: colors[h], 0.45)
        f.text(hx + 4 * cc + 6, y0 - 27 + h * 20 + 11, f"head {h + 1}", anchor="start", cls="small")
    f.text(hx + 40, y0 + 76, "H rows of Dh numbers", cls="small muted")
    ax = hx + 4 * cc + 64
    f.arrow((ax, y0 + 6), (ax + 56, y0 + 6))
    f.text(ax + 28, y0 - 6, "attend", cls="small")
    f.text(ax + 28, y0 + 26, "each head", cls="small")
    f.text(ax + 28, y0 + 42, "on its own", cls="small")
    bx = ax + 66
    for h in range(4):
        cells(bx, y0 - 27 + h * 20, 4, lambda k, h=h: colors[h], 0.9)
    f.arrow((bx + 4 * cc + 8, y0 + 6), (bx + 4 * cc + 60, y0 + 6))
    f.text(bx + 4 * cc + 34, y0 - 6, "reshape", cls="small mono")
    mx = bx + 4 * cc + 70
    cells(mx, y0, 16, lambda k: colors[k // 4], 0.9)
    f.text(mx + 8 * cc, y0 - 10, "heads side by side: D numbers", cls="small")
    f.text(mx + 8 * cc, y0 + 34, "out_proj then mixes the heads", cls="small muted")
    f.text(450, 428, "No extra computation: the D columns are only split into H groups of Dh = D / H.",
           cls="small muted")
    return f
