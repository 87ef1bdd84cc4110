"""tvae_lib: the small, tested library behind the book *Transformer-VAEs for Time Series*.

One module per concept, in the order the book meets them: ``data`` and ``sequences`` (door
cycles and variable-length batches), ``masks``, ``attention``, ``training``; later chapters
add ``seq2seq``, ``positional``, ``transformer``, ``vae``, ``tvae`` and ``metrics``.
Lower layers never import higher ones, and model code never imports plotting.
"""

__version__ = "0.1.0"
