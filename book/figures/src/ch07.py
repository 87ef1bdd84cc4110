"""Diagrams of chapter 7; run `python book/figures/src/make_figures.py` to rewrite them."""

from svglib import Figure


def tvae():
    f = Figure(
        "ch07_tvae_data_flow", 900, 650,
        "The Transformer-VAE's data flow, with the tensor shape on every arrow",
        "Encoder column: x (B, T, F) and its mask (B, T) go through a convolutional embedding "
        "to (B, T, D), the sinusoidal positional encoding and the Transformer encoder, then "
        "mean and max pooling over the real steps to (B, 2D) and two linear heads to mu and "
        "log sigma squared, (B, Z) each. Middle: z = mu + sigma times epsilon (mu in evaluation), "
        "and latent_proj turns z into one memory position (B, 1, D). Decoder column: the "
        "shifted input (teacher forcing, with decoder-input dropout) or the decoder's own "
        "previous outputs (free running) go through a linear embedding, the positional "
        "encoding and the Transformer decoder, which cross-attends to the memory under a "
        "causal mask, and output_proj gives x hat (B, T, F). The loss is the masked "
        "reconstruction plus beta times the KL term.",
    )
    ex, ew = 165, 250
    el = ex - ew / 2
    mx, mw = 430, 170
    ml = mx - mw / 2
    dx, dw = 705, 250
    dl = dx - dw / 2
    rows = {"A": (40, 64), "B": (144, 38), "C": (222, 32), "D": (294, 84), "E": (418, 40),
            "F": (498, 44), "G": (586, 40)}

    def top(r):
        return rows[r][0]

    def bottom(r):
        return rows[r][0] + rows[r][1]

    def down(cx, r1, r2, label, color="dark"):
        f.arrow((cx, bottom(r1)), (cx, top(r2) - 2), color=color)
        f.text(cx + 9, (bottom(r1) + top(r2)) / 2 + 5, label, anchor="start", cls="small mono")

    f.text(ex, 24, "encoder  q(z | x)", cls="bold ink-blue")
    f.text(mx, 24, "latent code", cls="bold ink-purple")
    f.text(dx, 24, "decoder  p(x | z)", cls="bold ink-orange")

    # ------------------------------------------------------------------ encoder
    f.box(el, top("A"), ew, rows["A"][1], "blue",
          [("x  (B, T, F)", "mono bold"), ("mask (B, T): True at real steps", "small"),
           ("(padding zeroed)", "small muted")], line_gap=18)
    down(ex, "A", "B", "(B, T, F)")
    f.box(el, top("B"), ew, rows["B"][1], "blue", [("input_proj: Conv1d, F \u2192 D,", "small"),
                                                  ("kernel 3 (a step and its neighbours)", "small")],
          line_gap=16)
    down(ex, "B", "C", "(B, T, D)")
    f.box(el, top("C"), ew, rows["C"][1], "gray", [("+ sinusoidal positional encoding", "small")])
    down(ex, "C", "D", "(B, T, D)")
    f.box(el, top("D"), ew, rows["D"][1], "blue",
          [("Transformer encoder", "bold small"), ("n_encoder_layers \u00d7 EncoderLayer", "small"),
           ("key_padding_mask = mask", "small mono ink-red")], line_gap=20)
    down(ex, "D", "E", "(B, T, D)")
    f.box(el, top("E"), ew, rows["E"][1], "blue", [("pooling over the real steps:", "small"),
                                                  ("mean \u2016 max over time", "small")], line_gap=16)
    down(ex, "E", "F", "(B, 2D)")
    f.box(el, top("F"), ew, rows["F"][1], "purple", [("to_mu, to_logvar: Linear 2D \u2192 Z", "small"),
                                                    ("\u03bc, log \u03c3^{2}: (B, Z) each", "small")],
          line_gap=17)

    # ------------------------------------------------------------------ latent
    f.box(ml, 44, mw, 132, "white",
          [("TVAEConfig defaults", "small bold"), ("F = n_features = 3", "small mono"),
           ("D = d_model = 64", "small mono"), ("H = n_heads = 4", "small mono"),
           ("Z = latent_dim = 2", "small mono"), ("T \u2264 max_len = 128", "small mono")],
          line_gap=19)
    fy = top("F") + rows["F"][1] / 2
    f.arrow((el + ew, fy), (ml - 2, fy), color="purple")
    f.box(ml, top("F"), mw, rows["F"][1], "purple",
          [("z = \u03bc + \u03c3 \u2299 \u03b5", "small"), ("(z = \u03bc in evaluation)", "small muted")],
          line_gap=17)
    f.arrow((mx, top("F")), (mx, bottom("E") + 2), color="purple")
    f.text(mx + 9, (bottom("E") + top("F")) / 2 + 5, "z (B, Z)", anchor="start", cls="small mono")
    f.box(ml, top("E"), mw, rows["E"][1], "purple", [("latent_proj:", "small"), ("Linear Z \u2192 D", "small")],
          line_gap=16)
    my = top("D") + 52
    f.line([(mx, top("E")), (mx, my), (dl - 2, my)], color="purple", width=2)
    f.text(mx + 9, (top("E") + my) / 2 + 14, "memory", anchor="start", cls="small ink-purple")
    f.text(mx + 9, (top("E") + my) / 2 + 30, "(B, 1, D)", anchor="start", cls="small mono")
    f.text((mx + dl) / 2 + 14, my - 8, "one position", cls="small muted")

    # ------------------------------------------------------------------ decoder
    f.box(dl, top("A"), dw, rows["A"][1], "orange",
          [("training: [0, x_{0}, \u2026, x_{T\u22122}]", "small"),
           ("(shifted right; 80% of steps zeroed:", "small"),
           ("decoder-input dropout)", "small")], line_gap=18)
    down(dx, "A", "B", "(B, T, F)")
    f.box(dl, top("B"), dw, rows["B"][1], "orange", [("target_proj: Linear F \u2192 D", "small")])
    down(dx, "B", "C", "(B, T, D)")
    f.box(dl, top("C"), dw, rows["C"][1], "gray", [("+ sinusoidal positional encoding", "small")])
    down(dx, "C", "D", "(B, T, D)")
    f.box(dl, top("D"), dw, rows["D"][1], "orange",
          [("Transformer decoder", "bold small"), ("n_decoder_layers \u00d7 DecoderLayer", "small"),
           ("causal mask; key_padding_mask", "small mono ink-red"),
           ("cross-attention to the memory", "small")], line_gap=18)
    down(dx, "D", "E", "(B, T, D)")
    f.box(dl, top("E"), dw, rows["E"][1], "orange", [("output_proj: Linear D \u2192 F", "small")])
    down(dx, "E", "F", "(B, T, F)")
    f.box(dl, top("F"), dw, rows["F"][1], "orange", [("x\u0302  (B, T, F)", "mono bold")])
    # free running loop
    lx = dl + dw + 28
    f.line([(dl + dw, top("F") + 22), (lx, top("F") + 22), (lx, top("A") + 32), (dl + dw + 2, top("A") + 32)],
           color="orange", dashed=True, width=1.8)
    ty = (top("A") + bottom("F")) / 2
    f.text(lx + 14, ty, "free running (free_run): each output is the next step's input",
           cls="small ink-orange", extra=f' transform="rotate(-90 {lx + 14} {ty})"')

    # ------------------------------------------------------------------ loss
    f.box(el, top("G"), dl + dw - el, rows["G"][1], "red",
          [("loss = reconstruction(x\u0302, x) over the real steps + \u03b2 \u00b7 KL(\u03bc, log \u03c3^{2})", "small bold")])
    f.arrow((ex, bottom("F")), (ex, top("G") - 2), color="red")
    f.arrow((dx, bottom("F")), (dx, top("G") - 2), color="red")
    return f
