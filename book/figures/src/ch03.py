"""Diagrams of chapter 3; run `python book/figures/src/make_figures.py` to rewrite them."""

import math

from svglib import Figure


def rdbu(v):
    """RdBu_r-like colour for v in [-1, 1], kept light enough for dark text."""
    a = min(1.0, abs(v)) * 0.7
    r, g, b = (214, 96, 77) if v > 0 else (67, 147, 195)

    def mix(c):
        return round(255 + (c - 255) * a)

    return f"rgb({mix(r)}, {mix(g)}, {mix(b)})"


def positional():
    f = Figure(
        "ch03_positional_encoding", 880, 460,
        "Sinusoidal positional encoding: reading the code of one position and adding it",
        "Each of the D = 8 columns of the table is a sine or cosine of the position t, with "
        "wavelengths growing from about 6 steps to about 6,000 steps. The code p_5 of position "
        "5 is the column of values at t = 5; it is added element-wise to the D numbers that "
        "represent step 5, and the sum goes on to attention.",
    )
    D, t_hl, t_max = 8, 5, 20
    top, row_h = 62, 36
    px0, px1 = 150, 470
    sx = (px1 - px0) / t_max
    labels = ["sin(t)", "cos(t)", "sin(t/10)", "cos(t/10)",
              "sin(t/100)", "cos(t/100)", "sin(t/1000)", "cos(t/1000)"]
    f.text(20, 26, "The table p[t, d], D = 8: one sinusoid of the position t per column d",
           anchor="start", cls="bold")
    f.text(20, top - 14, "d", anchor="start", cls="small mono muted")
    f.text(40, top - 14, "p[t, d]", anchor="start", cls="small mono muted")
    # highlight band at t = 5
    bx = px0 + t_hl * sx
    f.rect(bx - 8, top - 8, 16, D * row_h + 8, "white", rx=3, cls="thin",
           extra=' style="fill: #fff2b3; stroke: none"')
    f.text(bx, top - 14, "t = 5", cls="small bold")
    values = []
    for d in range(D):
        mid = top + d * row_h + row_h / 2
        omega = 10000 ** (-(d // 2) * 2 / D)
        fn = math.sin if d % 2 == 0 else math.cos
        f.text(20, mid + 4, str(d), anchor="start", cls="small mono")
        f.text(40, mid + 4, labels[d], anchor="start", cls="small mono")
        f.line([(px0, mid), (px1, mid)], color="gray", width=0.6, arrow=False, extra=' opacity="0.5"')
        pts = []
        steps = 200
        for k in range(steps + 1):
            t = t_max * k / steps
            pts.append((round(px0 + t * sx, 1), round(mid - 11 * fn(omega * t), 1)))
        f.line(pts, color="dark", width=1.6, arrow=False)
        for t in range(t_max + 1):
            f.dot(round(px0 + t * sx, 1), round(mid - 11 * fn(omega * t), 1), r=1.8, ink="#888888")
        v = fn(omega * t_hl)
        values.append(v)
        f.dot(bx, round(mid - 11 * v, 1), r=4, ink="#111111")
        f.line([(px1 + 8, mid), (560, mid)], color="gray", width=1, arrow=False, dashed=True)
    # axis
    ay = top + D * row_h + 6
    f.line([(px0, ay), (px1, ay)], color="dark", width=1, arrow=False)
    for t in range(0, t_max + 1, 5):
        x = px0 + t * sx
        f.line([(x, ay), (x, ay + 5)], color="dark", width=1, arrow=False)
        f.text(x, ay + 19, str(t), cls="small")
    f.text((px0 + px1) / 2, ay + 38, "position t (steps)", cls="small")
    f.text(20, ay + 62, "wavelengths 6.3, 63, 628 and 6,283 steps: the fast columns tell",
           anchor="start", cls="small muted")
    f.text(20, ay + 80, "neighbouring positions apart, the slow ones say roughly where",
           anchor="start", cls="small muted")

    # vectors
    cw, ch = 62, 30
    cols = {"p": 566, "e": 680, "s": 794}
    f.text(cols["p"] + cw / 2, top - 30, "p_{5}", cls="bold")
    f.text(cols["p"] + cw / 2, top - 12, "code of t = 5", cls="small muted")
    f.text(cols["e"] + cw / 2, top - 30, "step 5", cls="bold ink-blue")
    f.text(cols["e"] + cw / 2, top - 12, "its D numbers", cls="small muted")
    f.text(cols["s"] + cw / 2, top - 30, "sum", cls="bold")
    f.text(cols["s"] + cw / 2, top - 12, "to attention", cls="small muted")
    for d, v in enumerate(values):
        y = top + d * row_h + (row_h - ch) / 2
        f.rect(cols["p"], y, cw, ch, "white", rx=3, cls="thin", extra=f' style="fill: {rdbu(v)}"')
        f.text(cols["p"] + cw / 2, y + 20, f"{v:+.2f}".replace("-", "\u2212"), cls="small mono")
        f.rect(cols["e"], y, cw, ch, "blue", rx=3, cls="thin")
        f.rect(cols["s"], y, cw, ch, "gray", rx=3, cls="thin")
    mid_all = top + D * row_h / 2
    f.text((cols["p"] + cw + cols["e"]) / 2, mid_all + 9, "+", cls="bold", extra=' style="font-size: 26px"')
    f.text((cols["e"] + cw + cols["s"]) / 2, mid_all + 9, "=", cls="bold", extra=' style="font-size: 26px"')
    f.text(cols["e"] + cw / 2, ay + 19, "e_{5}", cls="small mono")
    f.text(cols["p"] + cw / 2, ay + 19, "p_{5}", cls="small mono")
    f.text(cols["s"] + cw / 2, ay + 19, "e_{5} + p_{5}", cls="small mono")
    f.text(cols["e"] + cw / 2, ay + 62, "for every step t and every sequence of the batch:",
           cls="small")
    f.text(cols["e"] + cw / 2, ay + 80, "x (B, T, D) + table[:T] (T, D) \u2192 (B, T, D)", cls="small mono")
    return f
