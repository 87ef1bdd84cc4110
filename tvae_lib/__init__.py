"""tvae_lib: the small, tested library behind the book *Transformer-VAEs for Time Series*.

One module per concept, in the order the book meets them, each about 300 lines at most with
its test twin in ``tests/``:

- foundations: ``checks`` (the argument checks), ``storage`` (atomic writes, ``.npz``),
  ``sequences`` (variable-length sequences, ``SequenceScaler``,
  padded batches), ``data`` (the door cycles and their loaders), ``training`` (the one loop),
  ``utils`` and ``numerics`` (the reproducible numeric mode);
- chapters 1 to 5: ``addition`` and ``seq2seq``, ``masks`` (one masked mean and MSE) and
  ``attention`` (dot-product, additive and multi-head, with its key/value cache),
  ``positional``, ``transformer`` (layers written once, cached or not), ``torch_reference``
  (PyTorch's layers with our weights), ``transformer_seq2seq`` (a whole Transformer on tokens),
  and ``manual_backward``, ``manual_layers`` and ``manual_encoder`` (backward passes by hand);
- chapters 6 to 9: ``vae``, ``tvae`` (the model, with its one free-running entry point),
  ``checkpoints`` (saving models, with a SHA-256), ``decoding``, ``recipes`` (training
  recipes for any dataset), ``evaluation`` (reconstruction, latent and baselines, with masks), ``train_tvae`` (the chapter-7 runs), ``sines``, ``scores``
  (judging generated sequences), ``views`` (their 2-D views), ``anomaly`` and ``bench``;
- ``plotting``: the figures the notebooks draw again and again.

Lower layers never import higher ones, and model code never imports plotting.
"""

__version__ = "0.1.0"

import os as _os

if _os.environ.get("TVAE_NUMERIC_MODE") == "reproducible":
    # Inside the reproducible mode (tvae_lib.numerics): pin the thread count and turn oneDNN off.
    from tvae_lib.numerics import apply_in_process as _apply_in_process

    _apply_in_process()
