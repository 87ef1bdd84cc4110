"""Diagrams of chapter 1; run `python book/figures/src/make_figures.py` to rewrite them."""

from svglib import Figure


def seq2seq():
    f = Figure(
        "ch01_seq2seq", 900, 400,
        "The LSTM encoder-decoder on the addition task, trained with teacher forcing",
        "The encoder LSTM reads the padded question 57+5 one character at a time; its final "
        "state (h, c) is the context and becomes the decoder's initial state. The decoder LSTM "
        "reads the start symbol and the true answer shifted right, and a linear layer scores "
        "the next character at every step: 6, 2, then padding.",
    )
    cell_w, step, y_cell, h_cell = 50, 64, 165, 50
    enc_x = [40 + i * step for i in range(7)]
    dec_x = [590 + j * step for j in range(4)]
    enc_end, dec_end = enc_x[-1] + cell_w, dec_x[-1] + cell_w

    # group titles and sizes
    f.text((enc_x[0] + enc_end) / 2, 30, "Encoder: reads the question", cls="bold ink-blue big")
    f.text((dec_x[0] + dec_end) / 2, 30, "Decoder: writes the answer", cls="bold ink-orange big")
    f.text(40, 74, "V = 13 characters, E = 16 embedding size,", anchor="start", cls="small muted")
    f.text(40, 92, "D = 128 LSTM state size; S = 7, T = 4", anchor="start", cls="small muted")

    # decoder outputs and the linear layer
    for j, ch in enumerate("62··"):
        cx = dec_x[j] + cell_w / 2
        f.box(cx - 15, 50, 30, 30, "white", [(ch, "mono big")], rx=5)
        f.arrow((cx, 100), (cx, 82))
        f.arrow((cx, y_cell), (cx, 132))
    f.rect(dec_x[0] - 4, 100, dec_end - dec_x[0] + 8, 30, "orange", rx=6)
    f.text((dec_x[0] + dec_end) / 2, 120, "Linear: D \u2192 V logits", cls="small")
    f.text(dec_x[0] - 12, 70, "scored on t[:, 1:]", anchor="end", cls="small mono")
    f.text(dec_x[0] - 12, 120, "(B, T, V)", anchor="end", cls="small mono")

    # LSTM cells and recurrence
    for i, x in enumerate(enc_x):
        f.box(x, y_cell, cell_w, h_cell, "blue", [("LSTM", "small")])
        if i:
            f.arrow((enc_x[i - 1] + cell_w, y_cell + 25), (x - 2, y_cell + 25))
    for j, x in enumerate(dec_x):
        f.box(x, y_cell, cell_w, h_cell, "orange", [("LSTM", "small")])
        if j:
            f.arrow((dec_x[j - 1] + cell_w, y_cell + 25), (x - 2, y_cell + 25))
    # the context: final state -> initial state
    f.arrow((enc_end, y_cell + 25), (dec_x[0] - 2, y_cell + 25), color="blue", width=2.5)
    mid = (enc_end + dec_x[0]) / 2
    f.text(mid, y_cell + 12, "(h, c)", cls="mono bold ink-blue")
    f.text(mid, y_cell + 47, "context", cls="small ink-blue")
    f.text(mid, y_cell + 63, "(1, B, D) each", cls="small mono muted")

    # embeddings
    f.rect(enc_x[0] - 4, 245, enc_end - enc_x[0] + 8, 26, "blue", rx=6)
    f.text((enc_x[0] + enc_end) / 2, 263, "Embedding (E = 16)", cls="small")
    f.rect(dec_x[0] - 4, 245, dec_end - dec_x[0] + 8, 26, "orange", rx=6)
    f.text((dec_x[0] + dec_end) / 2, 263, "Embedding (E = 16)", cls="small")
    for xs in (enc_x, dec_x):
        for x in xs:
            f.arrow((x + cell_w / 2, 245), (x + cell_w / 2, y_cell + h_cell + 2))

    # input tokens
    for x, ch in zip(enc_x, "57+5···", strict=True):
        cx = x + cell_w / 2
        f.box(cx - 15, 300, 30, 30, "white", [(ch, "mono big")], rx=5)
        f.arrow((cx, 300), (cx, 273))
    for x, ch in zip(dec_x, "_62·", strict=True):
        cx = x + cell_w / 2
        f.box(cx - 15, 300, 30, 30, "white", [(ch, "mono big")], rx=5)
        f.arrow((cx, 300), (cx, 273))

    f.text((enc_x[0] + enc_end) / 2, 355, "the question, padded with spaces (\u00b7)", cls="small")
    f.text((enc_x[0] + enc_end) / 2, 375, "src (B, S)", cls="small mono")
    f.text((dec_x[0] + dec_end) / 2, 355, "teacher forcing: reads the true previous", cls="small")
    f.text((dec_x[0] + dec_end) / 2, 373, "character, tgt_in = t[:, :-1]  (B, T)", cls="small")
    return f


def peeky():
    f = Figure(
        "ch01_peeky_decoder", 900, 420,
        "The peeky decoder: the context joins every decoder step",
        "The encoder's final hidden state, the context, starts the decoder as before and is "
        "also concatenated to the embedding of every decoder input and to every LSTM output "
        "before the linear layer, so each step sees the whole question's summary.",
    )
    cell_w, step = 56, 120
    dec_x = [300 + j * step for j in range(4)]
    y_out, y_lin, y_cat2, y_cell, y_cat1, y_emb, y_in = 50, 98, 150, 190, 262, 300, 346
    trunk_x, bus_top, bus_bot = 250, 22, 392

    # encoder, collapsed
    f.box(30, y_cell, 150, 50, "blue", [("Encoder LSTM", "small bold"), ("reads 57+5\u00b7\u00b7\u00b7", "small mono")])
    f.text(105, y_cell - 14, "as in the plain model", cls="small muted")
    f.arrow((180, y_cell + 25), (dec_x[0] - 2, y_cell + 25), color="blue", width=2.5)
    f.dot(trunk_x, y_cell + 25, r=4, ink="#1f77b4")
    f.text(trunk_x - 8, y_cell + 45, "(h, c)", anchor="end", cls="small mono ink-blue")
    f.text(trunk_x - 8, y_cell + 62, "initial state", anchor="end", cls="small ink-blue")
    # the context trunk and the two buses
    f.line([(trunk_x, y_cell + 25), (trunk_x, bus_top), (dec_x[-1] - 22, bus_top)], color="blue", width=2, arrow=False)
    f.line([(trunk_x, y_cell + 25), (trunk_x, bus_bot), (dec_x[-1] - 22, bus_bot)], color="blue", width=2, arrow=False)
    f.text(trunk_x - 10, 80, "context", anchor="end", cls="small bold ink-blue")
    f.text(trunk_x - 10, 97, "h of the last step", anchor="end", cls="small ink-blue")
    f.text(trunk_x - 10, 114, "(B, D)", anchor="end", cls="small mono ink-blue")

    for j, x in enumerate(dec_x):
        cx = x + cell_w / 2
        branch = x - 22
        # output token, linear, concat, LSTM, concat, embedding, input token
        f.box(cx - 15, y_out - 15, 30, 30, "white", [("62··"[j], "mono big")], rx=5)
        f.box(x - 4, y_lin, cell_w + 8, 28, "orange", [("Linear", "small")], rx=6)
        f.arrow((cx, y_lin), (cx, y_out + 17))
        f.node(cx, y_cat2, "\u2016", color="white", r=11, size=14)
        f.arrow((cx, y_cat2 - 11), (cx, y_lin + 30))
        f.box(x, y_cell, cell_w, 50, "orange", [("LSTM", "small")])
        f.arrow((cx, y_cell), (cx, y_cat2 + 13))
        f.node(cx, y_cat1, "\u2016", color="white", r=11, size=14)
        f.arrow((cx, y_cat1 - 11), (cx, y_cell + 52))
        f.box(x - 4, y_emb, cell_w + 8, 24, "orange", [("Embed", "small")], rx=6)
        f.arrow((cx, y_emb), (cx, y_cat1 + 13))
        f.box(cx - 15, y_in - 15, 30, 30, "white", [("_62·"[j], "mono big")], rx=5)
        f.arrow((cx, y_in - 15), (cx, y_emb + 26))
        # context branches
        f.line([(branch, bus_top), (branch, y_cat2), (cx - 13, y_cat2)], color="blue", width=1.5)
        f.line([(branch, bus_bot), (branch, y_cat1), (cx - 13, y_cat1)], color="blue", width=1.5)
        f.dot(branch, bus_top, r=3, ink="#1f77b4")
        f.dot(branch, bus_bot, r=3, ink="#1f77b4")
        if j:
            f.arrow((dec_x[j - 1] + cell_w, y_cell + 25), (x - 2, y_cell + 25))

    right = dec_x[-1] + cell_w + 24
    f.text(right, y_cat2 - 6, "[h_{t} ; context]", anchor="start", cls="small mono")
    f.text(right, y_cat2 + 12, "(B, T, 2D)", anchor="start", cls="small mono muted")
    f.text(right, y_cat1 - 6, "[e_{t} ; context]", anchor="start", cls="small mono")
    f.text(right, y_cat1 + 12, "(B, T, E + D)", anchor="start", cls="small mono muted")
    f.text(right, y_lin + 19, "logits (B, T, V)", anchor="start", cls="small mono muted")
    f.text(30, 330, "\u2016  concatenate", anchor="start", cls="small")
    f.text(30, 350, "blue lines: the context,", anchor="start", cls="small ink-blue")
    f.text(30, 367, "copied to every step", anchor="start", cls="small ink-blue")
    return f
