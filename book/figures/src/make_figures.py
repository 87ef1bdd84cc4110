"""Write every diagram of the book into book/figures/ (plain SVG, no dependencies).

Usage: python book/figures/src/make_figures.py
"""

from pathlib import Path

import ch01
import ch02
import ch03
import ch04
import ch05
import ch06
import ch07
import ch08

OUT = Path(__file__).resolve().parent.parent  # book/figures
FIGURES = [
    ch01.seq2seq, ch01.peeky,
    ch02.attention_seq2seq, ch02.attention_step, ch02.multi_head,
    ch03.positional,
    ch04.conventions, ch04.padding_causal,
    ch05.post_pre_ln, ch05.layers,
    ch06.vae,
    ch07.tvae,
    ch08.kv_cache,
]

if __name__ == "__main__":
    for make in FIGURES:
        print(make().save(OUT))
