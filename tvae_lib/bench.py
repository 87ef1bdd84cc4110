"""Benchmark: naive vs key/value-cached autoregressive generation with the chapter-7 TVAE.

Usage (from the repository root)::

    python -m tvae_lib.bench                 # 128 sequences of 109 steps, 5 repeats
    python -m tvae_lib.bench --repeats 3 --batch-size 32

Both loops decode the same latent codes with the same (randomly initialised) weights; speed
does not depend on the weights' values. Each is warmed up once, then timed ``repeats`` times;
the table shows the median, and the last line is machine-readable::

    decode_naive_s=... decode_cached_s=... decode_speedup=... max_abs_diff=...
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from tvae_lib.tvae import TransformerVAE, TVAEConfig
from tvae_lib.utils import count_parameters, seed_everything

__all__ = ["time_call", "run_benchmark", "main"]


def time_call(fn: Callable[[], torch.Tensor], repeats: int) -> tuple[list[float], torch.Tensor]:
    """Run ``fn`` once to warm up, then ``repeats`` timed times; returns (seconds, last output)."""
    out = fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - start)
    return seconds, out


def run_benchmark(
    batch_size: int = 128, length: int = 109, repeats: int = 5, config: TVAEConfig | None = None
) -> dict[str, float]:
    """Time naive and cached generation of ``batch_size`` sequences of ``length`` steps.

    Args:
        batch_size: Sequences decoded together (B).
        length: Steps per sequence (T).
        repeats: Timed runs of each loop (after one warm-up run).
        config: Model sizes; defaults to the chapter-7 model, ``TVAEConfig()``.

    Returns:
        ``{"decode_naive_s", "decode_cached_s", "decode_speedup", "max_abs_diff"}``: median
        seconds of each loop, their ratio, and the largest absolute difference of the outputs.
    """
    seed_everything(0)
    model = TransformerVAE(config or TVAEConfig()).eval()
    z = torch.randn(batch_size, model.config.latent_dim)  # (B, Z)
    with torch.no_grad():
        naive_s, naive = time_call(lambda: model.free_run(z, length, cached=False), repeats)
        cached_s, cached = time_call(lambda: model.free_run(z, length), repeats)
    naive_median, cached_median = statistics.median(naive_s), statistics.median(cached_s)
    return {
        "parameters": count_parameters(model),
        "decode_naive_s": naive_median,
        "decode_cached_s": cached_median,
        "decode_speedup": naive_median / cached_median,
        "max_abs_diff": (naive - cached).abs().max().item(),
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Parse the command line, run the benchmark and print the table and the summary line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--length", type=int, default=109)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    result = run_benchmark(args.batch_size, args.length, args.repeats)
    positions_naive = args.length * (args.length + 1) // 2
    print(f"TVAE {TVAEConfig()} ({result['parameters']:,} parameters), torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{args.batch_size} sequences x {args.length} steps, median of {args.repeats} runs")
    print(f"{'loop':<8}{'positions/sequence':>20}{'seconds':>10}")
    print(f"{'naive':<8}{positions_naive:>20,}{result['decode_naive_s']:>10.3f}")
    print(f"{'cached':<8}{args.length:>20,}{result['decode_cached_s']:>10.3f}")
    print(
        f"decode_naive_s={result['decode_naive_s']:.3f} "
        f"decode_cached_s={result['decode_cached_s']:.3f} "
        f"decode_speedup={result['decode_speedup']:.1f} max_abs_diff={result['max_abs_diff']:.2e}"
    )
    return result


if __name__ == "__main__":
    main()
