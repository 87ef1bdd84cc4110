import re

import torch

from tvae_lib import bench
from tvae_lib.tvae import TVAEConfig

TINY = TVAEConfig(d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1, n_decoder_layers=1, max_len=12)


def test_time_call_warms_up_then_times_each_repeat():
    calls = []

    def fn():
        calls.append(1)
        return torch.tensor(len(calls))

    seconds, out = bench.time_call(fn, repeats=3)
    assert len(calls) == 4 and len(seconds) == 3  # one warm-up, three timed
    assert all(s >= 0 for s in seconds) and int(out) == 4


def test_run_benchmark_compares_equal_outputs():
    result = bench.run_benchmark(batch_size=3, length=10, repeats=2, config=TINY)
    assert set(result) == {
        "parameters", "decode_naive_s", "decode_cached_s", "decode_parallel_s",
        "decode_speedup", "decode_cached_over_parallel", "decode_naive_over_parallel",
        "max_abs_diff",
    }  # fmt: skip
    assert result["max_abs_diff"] <= 1e-5  # naive, cached and teacher-forced agree
    assert min(result[f"decode_{k}_s"] for k in ("naive", "cached", "parallel")) > 0
    assert result["decode_speedup"] == result["decode_naive_s"] / result["decode_cached_s"]
    assert result["decode_cached_over_parallel"] == (
        result["decode_cached_s"] / result["decode_parallel_s"]
    )


def test_main_prints_the_table_and_the_summary_line(capsys):
    result = bench.main(["--batch-size", "2", "--length", "8", "--repeats", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[2].split() == ["pass", "positions/sequence", "seconds", "x", "parallel"]
    assert lines[3].split()[:3] == ["naive", "loop", "36"]
    assert lines[4].split()[:3] == ["cached", "loop", "8"]
    assert lines[5].split()[:3] == ["parallel", "(teacher-forced)", "8"]
    summary = re.fullmatch(
        r"decode_naive_s=(\S+) decode_cached_s=(\S+) decode_parallel_s=(\S+) "
        r"decode_speedup=(\S+) decode_cached_over_parallel=(\S+) max_abs_diff=(\S+)",
        lines[-1],
    )
    assert summary is not None
    assert float(summary[4]) == round(result["decode_speedup"], 1)
    assert float(summary[5]) == round(result["decode_cached_over_parallel"], 2)
