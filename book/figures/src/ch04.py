"""Diagrams of chapter 4; run `python book/figures/src/make_figures.py` to rewrite them."""

from svglib import Figure

ALLOWED, BLOCKED = "#dcf2d9", "#fadbdb"


def grid(f, x, y, allowed, labels, c=32, row_names=True, col_names=True, dim_rows=()):
    n_rows, n_cols = len(allowed), len(allowed[0])
    for r in range(n_rows):
        for k in range(n_cols):
            ok = allowed[r][k]
            f.rect(x + k * c, y + r * c, c, c, "white", rx=0, cls="thin",
                   extra=f' style="fill: {ALLOWED if ok else BLOCKED}; stroke: #888888"')
            f.text(x + k * c + c / 2, y + r * c + c / 2 + 5, labels[r][k],
                   cls="mono small" + (" muted" if r in dim_rows else ""))
    if row_names:
        for r in range(n_rows):
            f.text(x - 8, y + r * c + c / 2 + 4, str(r), anchor="end", cls="small muted")
    if col_names:
        for k in range(n_cols):
            f.text(x + k * c + c / 2, y - 6, str(k), cls="small muted")


def conventions():
    f = Figure(
        "ch04_mask_conventions", 880, 420,
        "The same causal mask in PyTorch's three mask conventions",
        "Three 5 by 5 grids show one causal mask: query t may attend to keys s up to t. Green "
        "cells may attend, red cells are blocked. As a boolean allowed-mask (the library's "
        "convention) green cells hold True; as a boolean blocked-mask (nn.MultiheadAttention, "
        "nn.Transformer) green cells hold False; as an additive float mask green cells hold 0 "
        "and red cells minus infinity.",
    )
    n, c = 5, 34
    causal = [[k <= r for k in range(n)] for r in range(n)]
    xs = [70, 370, 670]
    y = 136
    panels = [
        ("boolean, allowed", "True = may attend",
         [["T" if ok else "F" for ok in row] for row in causal],
         ["masks.causal_mask(5)", "this library,", "F.scaled_dot_product_attention"]),
        ("boolean, blocked", "True = may NOT attend",
         [["F" if ok else "T" for ok in row] for row in causal],
         ["masks.to_blocked(mask)", "nn.MultiheadAttention,", "nn.Transformer*"]),
        ("float, additive", "added to the scores",
         [["0" if ok else "\u2212\u221e" for ok in row] for row in causal],
         ["masks.to_additive(mask)", "accepted by both", ""]),
    ]
    f.text(440, 28, "One causal mask, three spellings: the colours mean the same, the values do not",
           cls="bold")
    for x, (title, meaning, labels, below) in zip(xs, panels, strict=True):
        cx = x + n * c / 2
        f.text(cx, 62, title, cls="bold")
        f.text(cx, 82, meaning, cls="small" + (" ink-red bold" if "NOT" in meaning else ""))
        grid(f, x, y, causal, labels, c=c)
        f.text(x - 30, y + n * c / 2, "query t", cls="small muted",
               extra=f' transform="rotate(-90 {x - 30} {y + n * c / 2})"')
        f.text(cx, y - 22, "key s", cls="small muted")
        f.text(cx, y + n * c + 24, below[0], cls="small mono")
        f.text(cx, y + n * c + 46, below[1], cls="small")
        f.text(cx, y + n * c + 63, below[2], cls="small mono" if "." in below[2] else "small")
    ly = 400
    f.rect(250, ly - 12, 16, 16, "white", rx=0, cls="thin", extra=f' style="fill: {ALLOWED}; stroke: #888888"')
    f.text(272, ly + 1, "query t may attend to key s", anchor="start", cls="small")
    f.rect(490, ly - 12, 16, 16, "white", rx=0, cls="thin", extra=f' style="fill: {BLOCKED}; stroke: #888888"')
    f.text(512, ly + 1, "blocked", anchor="start", cls="small")
    f.text(600, ly + 1, "T = True, F = False", anchor="start", cls="small muted")
    return f


def padding_causal():
    f = Figure(
        "ch04_padding_causal", 880, 490,
        "A key padding mask, the causal mask, and their combination",
        "For one sequence of 3 real steps padded to 5, the key padding mask is True at the "
        "three real keys and False at the two padded ones, for every query. The causal mask "
        "allows keys up to the query's own step. Their logical and, what merge_masks builds "
        "for a decoder's self-attention, allows a key only if it is real and not in the "
        "future. True means may attend.",
    )
    n, c = 5, 32
    length = 3
    pad = [[k < length for k in range(n)] for _ in range(n)]
    causal = [[k <= r for k in range(n)] for r in range(n)]
    both = [[pad[r][k] and causal[r][k] for k in range(n)] for r in range(n)]

    def tf(m):
        return [["T" if v else "F" for v in row] for row in m]

    xs = [80, 340, 600]
    y = 172
    titles = [("key padding mask", "(B, S)"),
              ("causal mask", "(T, T)"),
              ("both: causal & padding", "merge_masks \u2192 (B, 1, T, S)")]
    for x, (title, shape) in zip(xs, titles, strict=True):
        cx = x + n * c / 2
        f.text(cx, 28, title, cls="bold")
        f.text(cx, 48, shape, cls="small mono")
        f.text(cx, y - 22, "key s", cls="small muted")
        f.text(x - 30, y + n * c / 2, "query t", cls="small muted",
               extra=f' transform="rotate(-90 {x - 30} {y + n * c / 2})"')
    # the (B, S) row for one sequence, above the broadcast grid
    row_y = 68
    for k in range(n):
        ok = k < length
        f.rect(xs[0] + k * c, row_y, c, 24, "white", rx=0, cls="thin",
               extra=f' style="fill: {ALLOWED if ok else BLOCKED}; stroke: #888888"')
        f.text(xs[0] + k * c + c / 2, row_y + 17, "T" if ok else "F", cls="mono small")
    f.text(xs[0] - 8, row_y + 17, "b", anchor="end", cls="small muted")
    f.text(xs[0] + n * c + 8, row_y + 10, "lengths = 3,", anchor="start", cls="small")
    f.text(xs[0] + n * c + 8, row_y + 26, "padded to 5", anchor="start", cls="small")
    f.arrow((xs[0] + n * c / 2, row_y + 28), (xs[0] + n * c / 2, y - 40))
    f.text(xs[0] + n * c / 2 + 10, row_y + 50, "copied to every query row", anchor="start", cls="small muted")
    grid(f, xs[0], y, pad, tf(pad), c=c)
    grid(f, xs[1], y, causal, tf(causal), c=c)
    grid(f, xs[2], y, both, tf(both), c=c)
    mid = y + n * c / 2 + 9
    f.text(xs[0] + n * c + 26, mid, "&", cls="bold", extra=' style="font-size: 26px"')
    f.text(xs[1] + n * c + 26, mid, "=", cls="bold", extra=' style="font-size: 26px"')
    for r in (3, 4):
        f.text(xs[2] + n * c + 8, y + r * c + c / 2 + 4, "padded query", anchor="start", cls="small muted")
    under = y + n * c + 26
    notes = [["encoder self-attention", "(key_padding_mask), cross-attention", "(memory_key_padding_mask)"],
             ["a decoder's self-attention", "(self_attn_mask):", "no peeking at later steps"],
             ["a decoder's self-attention", "on a padded batch", ""]]
    for x, lines in zip(xs, notes, strict=True):
        for i, s in enumerate(lines):
            f.text(x + n * c / 2, under + i * 18, s, cls="small")
    ly = 428
    f.rect(40, ly - 12, 16, 16, "white", rx=0, cls="thin", extra=f' style="fill: {ALLOWED}; stroke: #888888"')
    f.text(62, ly + 1, "T = True = may attend (the library's convention)", anchor="start", cls="small")
    f.rect(440, ly - 12, 16, 16, "white", rx=0, cls="thin", extra=f' style="fill: {BLOCKED}; stroke: #888888"')
    f.text(462, ly + 1, "F = False = blocked", anchor="start", cls="small")
    f.text(40, ly + 26, "nn.Transformer and nn.MultiheadAttention want True = blocked: pass masks.to_blocked(mask).",
           anchor="start", cls="small muted")
    f.text(40, ly + 44, "The additive form, masks.to_additive(mask), is 0 where allowed and \u2212\u221e where blocked.",
           anchor="start", cls="small muted")
    return f
