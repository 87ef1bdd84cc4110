"""Diagrams of chapter 8; run `python book/figures/src/make_figures.py` to rewrite them."""

from svglib import Figure

GREEN_STRONG = "rgba(44, 160, 44, 0.55)"
GRAY_CELL = "#e4e4e4"


def kv_cache():
    f = Figure(
        "ch08_kv_cache", 900, 680,
        "Decoding with a key/value cache, step by step, against the naive loop",
        "Top: at step t the cached decoder embeds only the newest input at position t, "
        "computes its query, key and value, appends the key and value to the layer's cache, "
        "which grows by one row per step, and attends from the one query over all t + 1 cached "
        "keys. The cross-attention's keys and values come from the memory and are computed "
        "once, at step 0. Bottom: the attention scores computed at steps 0 to 3. The naive "
        "loop recomputes the whole lower triangle for the whole prefix at every step; the "
        "cached loop computes only the newest row.",
    )
    yA, hA = 80, 64
    mid = yA + hA / 2
    f.text(20, 24, "Cached decoding, step t (one decoder layer shown; every layer keeps its own cache)",
           anchor="start", cls="bold")
    boxes = [  # x, w, color, lines
        (20, 116, "orange", [("newest input", "small bold"), ("x\u0302_{t\u22121}", "small"), ("(B, 1, F)", "small mono")]),
        (158, 106, "orange", [("embed +", "small"), ("positions", "small"), ("(offset t)", "small")]),
        (286, 110, "gray", [("q, k, v", "small bold"), ("projections", "small"), ("one position", "small muted")]),
        (420, 180, "green", [("self-attention", "small bold"), ("1 query, t + 1 keys:", "small"),
                             ("weights (B,H,1,t+1)", "small mono")]),
        (622, 120, "green", [("cross-attention", "small bold"), ("to the memory", "small"), ("", "")]),
        (764, 118, "orange", [("feed-forward,", "small"), ("output_proj", "small mono"), ("x\u0302_{t} (B, 1, F)", "small")]),
    ]
    for i, (x, w, color, lines) in enumerate(boxes):
        f.box(x, yA, w, hA, color, lines, line_gap=18)
        if i:
            px, pw = boxes[i - 1][0], boxes[i - 1][1]
            f.arrow((px + pw, mid), (x - 2, mid), color="green" if i == 3 else "dark")
    f.text(275, yA + hA + 18, "(B, 1, D)", cls="small mono")
    f.text(408, mid - 8, "q", cls="small bold ink-green")
    # feedback loop along the top
    f.line([(823, yA), (823, 60), (78, 60), (78, yA - 2)], color="orange", dashed=True, width=1.8)
    f.text(453, 52, "x\u0302_{t} becomes the newest input of step t + 1 (at t = 0: a zero vector)",
           cls="small ink-orange")

    # the self-attention caches, right under the self-attention box
    c = 16
    n_rows = 5  # drawn for t = 4: rows 0..3 kept, row 4 new
    ky = 196
    kx, vx = 452, 532
    for x in (kx, vx):
        for r in range(n_rows):
            new = r == n_rows - 1
            for k in range(4):
                f.rect(x + k * c, ky + r * c, c, c, "white", rx=0, cls="thin",
                       extra=f' style="fill: {GREEN_STRONG if new else GRAY_CELL}; stroke: #888888"')
        f.arrow((x + 2 * c, ky), (x + 2 * c, yA + hA + 2))
    cache_bottom = ky + n_rows * c
    f.text(kx + 2 * c, cache_bottom + 48, "K cache", cls="small bold")
    f.text(vx + 2 * c, cache_bottom + 48, "V cache", cls="small bold")
    f.text((kx + vx + 4 * c) / 2, cache_bottom + 66, "(B, H, t + 1, Dh) each, one row more per step",
           cls="small mono")
    f.text(474, 172, "read all", anchor="end", cls="small")
    f.text(474, 188, "t + 1 rows", anchor="end", cls="small")
    # new k and v appended as the last row
    k_row_y = ky + (n_rows - 1) * c + c / 2
    f.line([(324, yA + hA), (324, k_row_y), (kx - 2, k_row_y)], color="green", width=1.8)
    f.line([(364, yA + hA), (364, cache_bottom + 14), (vx + 2 * c, cache_bottom + 14),
            (vx + 2 * c, cache_bottom + 2)], color="green", width=1.8)
    f.text(400, k_row_y - 6, "append k", cls="small ink-green")
    f.text(300, 200, "new k, v", anchor="end", cls="small ink-green")
    f.text(300, 216, "(B, H, 1, Dh)", anchor="end", cls="small mono")
    f.text(420, cache_bottom + 30, "append v", cls="small ink-green")
    # legend for the cache rows
    ly = 312
    f.rect(20, ly - 11, 14, 14, "white", rx=0, cls="thin", extra=f' style="fill: {GRAY_CELL}; stroke: #888888"')
    f.text(40, ly + 1, "kept from steps 0 \u2026 t\u22121", anchor="start", cls="small")
    f.rect(20, ly + 9, 14, 14, "white", rx=0, cls="thin", extra=f' style="fill: {GREEN_STRONG}; stroke: #888888"')
    f.text(40, ly + 21, "appended at step t", anchor="start", cls="small")

    # the static cross-attention cache
    sx = 670
    for k in range(4):
        f.rect(sx + k * c, ky, c, c, "white", rx=0, cls="thin",
               extra=' style="fill: #ece3f5; stroke: #888888"')
    f.arrow((sx + 2 * c, ky), (sx + 2 * c, yA + hA + 2), color="purple")
    f.text(sx + 2 * c, ky + 40, "memory K, V", cls="small bold")
    f.text(sx + 2 * c, ky + 58, "computed once, at step 0,", cls="small")
    f.text(sx + 2 * c, ky + 74, "then reused (static)", cls="small")
    f.text(sx + 2 * c, ky + 92, "(B, H, S, Dh); S = 1", cls="small mono")
    f.text(sx + 2 * c, ky + 108, "for the TVAE", cls="small muted")
    f.arrow((790, ky + 8), (sx + 4 * c + 2, ky + 8), color="purple")
    f.text(796, ky + 4, "memory", anchor="start", cls="small ink-purple")
    f.text(796, ky + 20, "(B, S, D)", anchor="start", cls="small mono")

    # ---------------------------------------------------------------- bottom comparison
    top = 392
    f.line([(20, top - 22), (880, top - 20)], color="gray", width=1, arrow=False, dashed=True)
    f.text(20, top + 4, "Attention scores computed at each step (query rows \u00d7 key columns, causal)",
           anchor="start", cls="bold")
    cc = 15
    xs = [250, 350, 450, 550]
    ny, cy_ = top + 44, top + 150
    f.text(20, ny + 20, "naive loop", anchor="start", cls="small bold")
    f.text(20, ny + 37, "cached=False: re-runs the", anchor="start", cls="small")
    f.text(20, ny + 54, "whole prefix every step", anchor="start", cls="small")
    f.text(20, cy_ + 20, "cached loop", anchor="start", cls="small bold")
    f.text(20, cy_ + 37, "the default: runs only the", anchor="start", cls="small")
    f.text(20, cy_ + 54, "newest position", anchor="start", cls="small")
    for t, x in enumerate(xs):
        n = t + 1
        f.text(x + 30, top + 32, f"step t = {t}", cls="small muted")
        for r in range(n):
            for k in range(n):
                if k > r:
                    continue
                f.rect(x + k * cc, ny + r * cc, cc, cc, "white", rx=0, cls="thin",
                       extra=f' style="fill: {GREEN_STRONG}; stroke: #888888"')
                last = r == n - 1
                fill = GREEN_STRONG if last else "#ffffff"
                dash = "" if last else "; stroke-dasharray: 2 2"
                f.rect(x + k * cc, cy_ + r * cc, cc, cc, "white", rx=0, cls="thin",
                       extra=f' style="fill: {fill}; stroke: #9a9a9a{dash}"')
        f.text(x + 30, ny + 82, f"{n} position{'s' if n > 1 else ''}", cls="small")
        f.text(x + 30, cy_ + 82, "1 position", cls="small")
    f.text(655, ny + 30, "\u2026", cls="big")
    f.text(655, cy_ + 30, "\u2026", cls="big")
    f.text(700, ny + 20, "T (T + 1) / 2 positions", anchor="start", cls="small bold")
    f.text(700, ny + 37, "(5,995 for T = 109);", anchor="start", cls="small")
    f.text(700, ny + 54, "attention work O(T^{3})", anchor="start", cls="small")
    f.text(700, cy_ + 20, "T positions", anchor="start", cls="small bold")
    f.text(700, cy_ + 37, "(109 for T = 109);", anchor="start", cls="small")
    f.text(700, cy_ + 54, "attention work O(T^{2})", anchor="start", cls="small")
    f.rect(250, cy_ + 100, 12, 12, "white", rx=0, cls="thin", extra=' style="fill: #ffffff; stroke: #9a9a9a; stroke-dasharray: 2 2"')
    f.text(268, cy_ + 110, "earlier rows: not recomputed (their keys and values are in the cache; "
           "same numbers)", anchor="start", cls="small muted")
    return f
