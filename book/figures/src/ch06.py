"""Diagrams of chapter 6; run `python book/figures/src/make_figures.py` to rewrite them."""

from svglib import Figure


def vae():
    f = Figure(
        "ch06_vae_reparameterization", 900, 470,
        "A VAE with the reparameterization trick, and the path its gradients take",
        "The encoder maps x to a mean mu and a log-variance log sigma squared, each of shape "
        "(B, Z). Noise epsilon is drawn from N(0, I) and the code is z = mu + sigma times "
        "epsilon, with sigma = exp(log sigma squared / 2). The decoder maps z to x hat. The loss "
        "is the reconstruction term plus beta times the KL divergence of N(mu, sigma squared) "
        "from N(0, I). The gradient of the loss reaches mu and sigma through z; epsilon is a "
        "random input without parameters, off the gradient path.",
    )
    band = ' stroke-opacity="0.22" stroke-linecap="round"'

    def grad(points):
        f.line(points, color="red", width=12, arrow=False, extra=band)

    # gradient path, drawn first, under everything
    grad([(809, 342), (809, 250), (809, 142), (688, 142), (628, 142)])
    grad([(628, 142), (628, 80), (292, 80)])
    grad([(628, 142), (628, 232), (292, 232)])
    grad([(292, 80), (232, 80), (232, 232), (292, 232)])
    grad([(232, 142), (161, 142)])
    grad([(292, 146), (292, 80)])
    grad([(292, 146), (292, 232)])

    f.box(20, 120, 64, 44, "blue", [("x", "bold"), ("(B, F)", "small mono")], rx=6)
    f.arrow((84, 142), (104, 142))
    f.box(106, 102, 110, 80, "blue", [("Encoder", "bold"), ("q_{\u03c6}(z | x)", "")], line_gap=22)
    f.line([(216, 142), (232, 142)], arrow=False)
    f.dot(232, 142, r=3.5)
    f.line([(232, 142), (232, 80), (242, 80)])
    f.line([(232, 142), (232, 232), (242, 232)])
    f.box(244, 58, 104, 44, "purple", [("\u03bc", "bold"), ("mu (B, Z)", "small mono")], rx=6)
    f.box(244, 210, 104, 44, "purple", [("log \u03c3^{2}", "bold"), ("logvar (B, Z)", "small mono")], rx=6)
    # KL between them
    f.box(254, 126, 76, 40, "red", [("KL", "bold"), ("(B,)", "small mono")], rx=6, line_gap=16)
    f.arrow((292, 102), (292, 124))
    f.arrow((292, 210), (292, 168))
    # sigma, epsilon, product, sum
    f.arrow((348, 232), (372, 232))
    f.box(374, 212, 128, 40, "purple", [("\u03c3 = exp(\u00bd log \u03c3^{2})", "small")], rx=6)
    f.arrow((502, 232), (535, 232))
    f.node(550, 232, "\u00d7", color="white", r=13, size=18)
    f.rect(500, 318, 100, 44, "gray", rx=6, cls="box dashed")
    f.text(550, 337, "\u03b5 ~ N(0, I)", cls="")
    f.text(550, 354, "(B, Z)", cls="small mono")
    f.arrow((550, 318), (550, 247))
    f.text(550, 384, "random input: no parameters,", cls="small muted")
    f.text(550, 400, "nothing to learn, off the path", cls="small muted")
    f.line([(348, 80), (628, 80), (628, 127)])
    f.line([(563, 232), (628, 232), (628, 157)])
    f.node(628, 142, "+", color="white", r=13, size=18)
    f.text(490, 70, "\u2202z/\u2202\u03bc = 1", cls="small ink-red")
    f.text(638, 196, "\u2202z/\u2202log \u03c3^{2}", anchor="start", cls="small ink-red")
    f.text(638, 214, "= \u00bd \u03c3 \u03b5", anchor="start", cls="small ink-red")
    f.text(690, 104, "z = \u03bc + \u03c3 \u2299 \u03b5", cls="small")
    f.arrow((641, 142), (654, 142))
    f.box(656, 120, 64, 44, "purple", [("z", "bold"), ("(B, Z)", "small mono")], rx=6)
    f.arrow((720, 142), (742, 142))
    f.box(744, 102, 130, 80, "orange", [("Decoder", "bold"), ("p_{\u03b8}(x | z)", "")], line_gap=22)
    f.arrow((809, 182), (809, 226))
    f.box(777, 228, 64, 44, "orange", [("x\u0302", "bold"), ("(B, F)", "small mono")], rx=6)
    f.arrow((809, 272), (809, 316))
    f.box(734, 318, 150, 48, "red", [("reconstruction", "bold small"), ("\u2212log p_{\u03b8}(x | z)", "small")],
          rx=6, line_gap=18)
    f.line([(52, 164), (52, 424), (809, 424), (809, 368)])
    f.text(300, 416, "the input x is also the reconstruction target", cls="small muted")

    f.text(610, 28, "loss = reconstruction + \u03b2 \u00b7 KL", cls="bold ink-red big")
    f.text(610, 46, "(\u03b2 = 1: the negative ELBO; chapter 7 also tries other \u03b2)", cls="small muted")
    f.line([(24, 452), (64, 452)], color="red", width=12, arrow=False, extra=band)
    f.text(74, 457, "the path of the loss's gradient: through z to \u03bc and \u03c3, and on into the encoder",
           anchor="start", cls="small")
    return f
