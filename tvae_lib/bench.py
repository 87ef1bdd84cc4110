"""Benchmark: autoregressive generation with the chapter-7 TVAE, naive and cached, against
the physical limit, one teacher-forced pass over the same positions.

Usage (from the repository root; ``make bench`` runs the first line)::

    python -m tvae_lib.bench                 # 128 sequences of 109 steps, 5 repeats
    python -m tvae_lib.bench --repeats 3 --batch-size 32

Generation must run its steps one after another; a teacher-forced pass computes the same
positions all at once, given the inputs. Decoding the generated sequence with teacher forcing
reproduces it (each position sees the same inputs), so that pass is the floor a generation
loop can approach but not beat by much. All three decode the same latent codes with the same
(randomly initialised) weights; speed does not depend on the weights' values. Each is warmed
up once, then the three are timed in turn, ``repeats`` times; the table shows the medians, and
the last line is machine-readable::

    decode_naive_s=... decode_cached_s=... decode_parallel_s=... decode_speedup=...
    decode_cached_over_parallel=... max_abs_diff=...

``max_abs_diff`` is the largest difference between any two of the three outputs.
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
    """Time naive and cached generation of ``batch_size`` sequences of ``length`` steps, and
    one teacher-forced pass over the generated sequences.

    Args:
        batch_size: Sequences decoded together (B).
        length: Steps per sequence (T).
        repeats: Timed runs of each, interleaved (after one warm-up run of each).
        config: Model sizes; defaults to the chapter-7 model, ``TVAEConfig()``.

    Returns:
        ``{"parameters", "decode_naive_s", "decode_cached_s", "decode_parallel_s",
        "decode_speedup", "decode_cached_over_parallel", "decode_naive_over_parallel",
        "max_abs_diff"}``: median seconds of each, their ratios, and the largest absolute
        difference between the three outputs.
    """
    seed_everything(0)
    model = TransformerVAE(config or TVAEConfig()).eval()
    z = torch.randn(batch_size, model.config.latent_dim)  # (B, Z)
    with torch.no_grad():
        cached = model.free_run(z, length)  # the sequences the parallel pass reproduces
        passes = {
            "naive": lambda: model.free_run(z, length, cached=False),
            "cached": lambda: model.free_run(z, length),
            "parallel": lambda: model.decode(z, cached),
        }
        outputs = {name: fn() for name, fn in passes.items()}  # warm-up
        seconds = {name: [] for name in passes}
        for _ in range(repeats):  # interleaved, so a slow spell of the machine hits all three
            for name, fn in passes.items():
                start = time.perf_counter()
                outputs[name] = fn()
                seconds[name].append(time.perf_counter() - start)
    naive, cached, parallel = outputs["naive"], outputs["cached"], outputs["parallel"]
    naive_t, cached_t, parallel_t = (statistics.median(seconds[k]) for k in passes)
    diffs = [(a - b).abs().max().item() for a, b in ((naive, cached), (cached, parallel),
                                                      (naive, parallel))]  # fmt: skip
    return {
        "parameters": count_parameters(model),
        "decode_naive_s": naive_t,
        "decode_cached_s": cached_t,
        "decode_parallel_s": parallel_t,
        "decode_speedup": naive_t / cached_t,
        "decode_cached_over_parallel": cached_t / parallel_t,
        "decode_naive_over_parallel": naive_t / parallel_t,
        "max_abs_diff": max(diffs),
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Parse the command line, run the benchmark and print the table and the summary line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--length", type=int, default=109)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    result = run_benchmark(args.batch_size, args.length, args.repeats)
    r = result
    print(f"TVAE {TVAEConfig()} ({r['parameters']:,} parameters), torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{args.batch_size} sequences x {args.length} steps, median of {args.repeats} runs")
    print(f"{'pass':<28}{'positions/sequence':>20}{'seconds':>10}{'x parallel':>12}")
    rows = (
        ("naive loop", args.length * (args.length + 1) // 2, "naive"),
        ("cached loop", args.length, "cached"),
        ("parallel (teacher-forced)", args.length, "parallel"),
    )
    for name, positions, key in rows:
        seconds = r[f"decode_{key}_s"]
        print(f"{name:<28}{positions:>20,}{seconds:>10.3f}{seconds / r['decode_parallel_s']:>12.1f}")
    print(
        f"decode_naive_s={r['decode_naive_s']:.3f} decode_cached_s={r['decode_cached_s']:.3f} "
        f"decode_parallel_s={r['decode_parallel_s']:.3f} decode_speedup={r['decode_speedup']:.1f} "
        f"decode_cached_over_parallel={r['decode_cached_over_parallel']:.2f} "
        f"max_abs_diff={r['max_abs_diff']:.2e}"
    )
    return result


if __name__ == "__main__":
    main()
