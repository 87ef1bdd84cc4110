"""tvae_lib: the small, tested library behind the book *Transformer-VAEs for Time Series*.

One module per concept, in the order the book meets them, each about 300 lines at most with
its test twin in ``tests/``:

- foundations: ``checks`` (the argument checks), ``storage`` (atomic writes, ``.npz``,
  checkpoints with a SHA-256), ``sequences`` (variable-length sequences, ``SequenceScaler``,
  padded batches), ``data`` (the door cycles and their loaders), ``training`` (the one loop),
  ``utils`` and ``numerics`` (the reproducible numeric mode);
- chapters 1 to 5: ``addition`` and ``seq2seq``, ``masks`` (one masked mean and MSE) and
  ``attention`` (with its key/value cache), ``positional``, ``transformer`` (layers written once,
  cached or not) and ``manual_backward``;
- chapters 6 to 9: ``vae``, ``tvae`` (the model, with its one free-running entry point),
  ``decoding``, ``recipes`` (training recipes for any dataset), ``evaluation`` (reconstruction,
  latent and baselines, with masks), ``train_tvae`` (the chapter-7 runs), ``sines``, ``scores``
  (judging generated sequences), ``anomaly`` and ``bench``;
- ``plotting``: the figures the notebooks draw again and again.

Lower layers never import higher ones, and model code never imports plotting.
"""

__version__ = "0.1.0"

import os as _os

if _os.environ.get("TVAE_NUMERIC_MODE") == "reproducible":
    # Inside the reproducible mode (tvae_lib.numerics): pin the thread count and turn oneDNN off.
    from tvae_lib.numerics import apply_in_process as _apply_in_process

    _apply_in_process()
