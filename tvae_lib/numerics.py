"""The reproducible numeric mode: the same bits on any x86-64 CPU with AVX2, whatever its cores.

The same seeded code gives different last bits on different CPUs: PyTorch, MKL, oneDNN,
OpenBLAS and NumPy each pick their fastest kernels for the processor they find (AVX2, AVX-512,
AMX, a vendor's own code path) and split sums among as many threads as there are cores; training
then turns a last-bit difference into a third-digit one. The mode pins every one of those
choices:

* PyTorch's CPU dispatch to its AVX2 kernels (``ATEN_CPU_CAPABILITY``);
* MKL, which does PyTorch's matrix products, to its AVX2 code in strict conditional numerical
  reproducibility (``MKL_CBWR=AVX2,STRICT``: fixed blocking, deterministic reductions, static
  scheduling) with a fixed thread count (``MKL_DYNAMIC=FALSE``). Intel documents the AVX2 branch
  for Intel CPUs; on others MKL falls back to its AUTO branch, whose results Intel does not
  promise to match. Measured with the same MKL build (2024.2): an Intel Xeon and an AMD EPYC,
  both with AVX-512, gave the same bits in this setting for four matrix products (64 to 1024
  on a side) and an LSTM, and different bits on their own settings. Should an AMD
  machine ever differ, ``MKL_CBWR=COMPATIBLE`` (SSE2 code, documented as vendor-neutral) is the
  fallback, at about twice the cost of a matrix product;
* oneDNN off: Intel promises its results bit for bit only from run to run on one hardware
  platform, so an LSTM or a convolution goes through PyTorch's own kernels and MKL instead
  (``ONEDNN_MAX_CPU_ISA`` caps whatever still reaches it);
* OpenBLAS, behind NumPy and scikit-learn, to its Haswell (AVX2) kernels on one thread, and
  NumPy's own SIMD loops to the AVX2 level (``NPY_ENABLE_CPU_FEATURES=X86_V3``);
* the intra-op thread count to :data:`THREADS`, whatever the machine's core count;
* Python's string hashing (``PYTHONHASHSEED``).

Libraries read these settings once, when they load, so they must be in the environment before
``torch`` or ``numpy`` is first imported: the Makefile runs every command that writes or checks
the book's outputs (``make notebooks``, ``make nbval``, ``make test``, ``make checkpoints``)
through this module, and ``python -m tvae_lib.train_tvae`` restarts itself under it. The thread
count and the oneDNN switch are applied when ``tvae_lib`` is imported inside the mode.

Usage::

    python -m tvae_lib.numerics -- COMMAND [ARG ...]   # run COMMAND in the mode
    python -m tvae_lib.numerics --show                 # print the settings

Outside the mode (a notebook opened by hand, another platform) everything still runs; only the
last digits of trained numbers may differ. ``make check-numbers`` compares those with tolerances.
"""

from __future__ import annotations

import os
import platform
import sys

__all__ = [
    "THREADS",
    "MODE_VARIABLE",
    "cpu_supports_mode",
    "mode_environment",
    "in_mode",
    "apply_in_process",
    "describe",
    "main",
]

THREADS = 2
"""The mode's intra-op thread count (2, the core count of the machine the book is checked on)."""

MODE_VARIABLE = "TVAE_NUMERIC_MODE"
"""Set to ``"reproducible"`` in the mode's environment; :func:`in_mode` reads it."""

# Settings that pin a kernel path: x86-64 with AVX2 only (numpy refuses X86_V3 elsewhere).
_X86_SETTINGS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2,STRICT",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_ENABLE_CPU_FEATURES": "X86_V3",
}
# Settings that hold on any platform.
_COMMON_SETTINGS = {
    "OMP_NUM_THREADS": str(THREADS),
    "MKL_NUM_THREADS": str(THREADS),
    "MKL_DYNAMIC": "FALSE",
    "OMP_DYNAMIC": "FALSE",
    "OPENBLAS_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
}


def cpu_supports_mode() -> bool:
    """Whether this CPU can run the mode's pinned kernel paths (x86-64 with AVX2 and FMA)."""
    if platform.machine().lower() not in {"x86_64", "amd64"}:
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return {"avx2", "fma"} <= set(flags)


def mode_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) with the mode's settings laid over it.

    On a CPU without AVX2 (an ARM laptop, say) only the thread count and hashing are pinned:
    such a machine cannot give the committed bits, and ``make check-numbers`` is the check there.
    """
    env = dict(os.environ if base is None else base)
    env.update(_COMMON_SETTINGS)
    if cpu_supports_mode():
        env.update(_X86_SETTINGS)
    env[MODE_VARIABLE] = "reproducible"
    return env


def in_mode() -> bool:
    """Whether this process runs in the mode: its settings are all in the environment, on a CPU
    that can repeat the committed bits (x86-64 with AVX2)."""
    expected = mode_environment({})
    return cpu_supports_mode() and all(os.environ.get(k) == v for k, v in expected.items())


def apply_in_process() -> None:
    """Pin what only a running process can pin: the thread count and oneDNN off.

    ``tvae_lib`` calls this on import when the mode's variable is set; it imports ``torch``.
    """
    import torch

    torch.set_num_threads(THREADS)
    torch.backends.mkldnn.enabled = False


def describe() -> str:
    """One line on the numeric state of this process, for a notebook or a log."""
    import torch

    state = "reproducible numeric mode" if in_mode() else "machine's own numeric setting"
    return (
        f"{state}: torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()} kernels, "
        f"{torch.get_num_threads()} threads, "
        f"oneDNN {'on' if torch.backends.mkldnn.enabled else 'off'}"
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: ``-- COMMAND ...`` runs it in the mode; ``--show`` prints the settings."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--show"]:
        for key, value in sorted(mode_environment({}).items()):
            print(f"{key}={value}")
        return 0
    if args[:1] == ["--"]:
        args = args[1:]
    if not args or args[0].startswith("-"):
        print(__doc__.split("Usage::")[1].split("\n\n")[1], file=sys.stderr)
        print("numerics: give a command to run in the mode, after '--'", file=sys.stderr)
        return 2
    if not cpu_supports_mode():
        print(
            "numerics: this CPU has no AVX2 (or is not x86-64), so the committed outputs cannot "
            "repeat bit for bit here; only the thread count is pinned. Compare numbers with "
            "`make check-numbers` instead.",
            file=sys.stderr,
        )
    try:
        os.execvpe(args[0], args, mode_environment())
    except FileNotFoundError:
        print(f"numerics: command not found: {args[0]!r}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main())
