"""tvae_lib: the small, tested library behind the book *Transformer-VAEs for Time Series*.

One module per concept, in the order the book meets them: ``data`` and ``sequences`` (door
cycles and variable-length batches), ``training`` (the one training loop), ``addition`` and
``seq2seq`` (chapter 1), ``masks`` and ``attention`` (chapters 2 and 4), ``positional``,
``transformer`` and ``manual_backward`` (chapters 3 and 5), ``vae``, ``tvae`` and
``train_tvae`` (chapters 6 and 7), ``sines``, ``metrics``, ``decoding`` and ``bench``
(chapter 8), and ``utils``. Lower layers never import higher ones, and model code never
imports plotting.
"""

__version__ = "0.1.0"

import os as _os

if _os.environ.get("TVAE_NUMERIC_MODE") == "reproducible":
    # Inside the reproducible mode (tvae_lib.numerics): pin the thread count and turn oneDNN off.
    from tvae_lib.numerics import apply_in_process as _apply_in_process

    _apply_in_process()
