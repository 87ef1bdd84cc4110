"""Evidence for the reproducible numeric mode: one seeded training under imitated machines.

This machine cannot become another CPU, but the switches that pick kernel paths can make it
behave like one: PyTorch, NumPy and OpenBLAS capped at AVX2 (a CPU without AVX-512), MKL without
its newest instruction sets, oneDNN capped at AVX2, and the thread count a machine with 1, 2 or 8
cores would ask for. For every combination this runs a short seeded training through each kernel
family the book uses (the door simulator and NumPy's math, scikit-learn's PCA over OpenBLAS, an
LSTM seq2seq step, a Transformer-VAE with a convolutional embedding, teacher-forced and
free-running), once on the machine's own settings and once inside the mode, and prints the hash
of everything it computed. Inside the mode every combination must give one hash.

Usage: python tests/numerics_matrix.py [--quick]    (about 5 s a run, 48 runs)
       python tests/numerics_matrix.py --probe      (one run in this process: prints the hashes)
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import subprocess
import sys

IMITATIONS = {
    "cpu": {
        "native": {},
        "avx2-only": {
            "ATEN_CPU_CAPABILITY": "avx2",
            "NPY_ENABLE_CPU_FEATURES": "X86_V3",
            "OPENBLAS_CORETYPE": "Haswell",
        },
    },
    "mkl": {"newest": {}, "no-avx512": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}},
    "onednn": {"uncapped": {}, "capped": {"ONEDNN_MAX_CPU_ISA": "AVX2"}},
    "threads": {str(n): {"OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n),
                         "OPENBLAS_NUM_THREADS": str(n), "PROBE_THREADS": str(n)}
                for n in (1, 2, 8)},  # fmt: skip
}


def _digest(*arrays) -> str:
    import numpy as np
    import torch

    h = hashlib.sha256()
    for a in arrays:
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:12]


def probe() -> dict[str, str]:
    """The seeded computations; one hash per kernel family and one over all."""
    import torch

    # a machine with N cores asks for N threads before any library code runs
    torch.set_num_threads(int(os.environ.get("PROBE_THREADS", torch.get_num_threads())))
    import numpy as np
    from sklearn.decomposition import PCA

    import tvae_lib  # noqa: F401  (inside the mode, this pins the thread count)
    from tvae_lib.addition import START_ID, VOCAB, load_addition
    from tvae_lib.data import make_door_cycles
    from tvae_lib.seq2seq import Seq2Seq, Seq2SeqConfig, seq2seq_step
    from tvae_lib.train_tvae import RUNS, make_step_fn
    from tvae_lib.tvae import TransformerVAE
    from tvae_lib.utils import seed_everything

    out = {}
    cycles = make_door_cycles(256, seed=0)
    x = torch.from_numpy(cycles.x)  # (256, T, F)
    out["numpy: simulator and ufuncs"] = _digest(cycles.x, np.exp(np.sin(cycles.x)))
    flat = cycles.x.reshape(len(cycles.x), -1)  # (256, T * F)
    out["openblas: PCA"] = _digest(PCA(2, svd_solver="full").fit_transform(flat))

    def train(model, loss_of, steps=10):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(steps):
            optimizer.zero_grad()
            loss_of(model).backward()
            optimizer.step()
        return _digest(*model.parameters())

    seed_everything(0)
    data = load_addition(n=600, n_test=100)
    seq2seq = Seq2Seq(Seq2SeqConfig(len(VOCAB), START_ID, decoder="attention"))
    batch = (data.x_train[:256], data.t_train[:256])
    out["torch: LSTM seq2seq"] = train(seq2seq, lambda m: seq2seq_step(m, batch)["loss"])
    labels = torch.from_numpy(cycles.labels)
    for free_running in (False, True):
        seed_everything(0)
        model = TransformerVAE(RUNS["final"].config)
        step = make_step_fn(RUNS["final"], {"beta": 0.03, "free_running": free_running})
        name = "free-running" if free_running else "teacher-forced"
        out[f"torch: TVAE {name}"] = train(
            model, lambda m, step=step: step(m, (x[:64], labels[:64]))["loss"],
            steps=4 if free_running else 10,
        )
    out["all"] = hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest()[:12]
    out["threads used"] = str(torch.get_num_threads())
    return out


def run_matrix(quick: bool) -> int:
    from tvae_lib.numerics import mode_environment

    axes = list(IMITATIONS)
    choices = [list(IMITATIONS[a]) for a in axes]
    if quick:
        choices = [c[:1] + c[-1:] for c in choices]
    pinned = ("ATEN_", "MKL_", "ONEDNN_", "OMP_", "OPENBLAS_", "NPY_", "TVAE_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(pinned)}
    print(f"{'cpu':10} {'mkl':10} {'onednn':9} {'threads':7} | {'own settings':12} "
          f"{'threads':7} | {'in the mode':12} {'threads':7}")  # fmt: skip
    seen = {"own": {}, "mode": {}}
    for combo in itertools.product(*choices):
        env = dict(base)
        for axis, choice in zip(axes, combo, strict=True):
            env.update(IMITATIONS[axis][choice])
        results = {}
        for where, environment in (("own", env), ("mode", mode_environment(env))):
            environment = {**environment, "PROBE_THREADS": env["PROBE_THREADS"]}
            done = subprocess.run([sys.executable, __file__, "--probe"], env=environment,
                                  capture_output=True, text=True, check=True)  # fmt: skip
            results[where] = json.loads(done.stdout.strip().splitlines()[-1])
            seen[where].setdefault(results[where]["all"], []).append(combo)
        own, mode = results["own"], results["mode"]
        print(f"{combo[0]:10} {combo[1]:10} {combo[2]:9} {combo[3]:7} | "
              f"{own['all']:12} {own['threads used']:7} | {mode['all']:12} "
              f"{mode['threads used']:7}", flush=True)  # fmt: skip
    n = sum(len(v) for v in seen["mode"].values())
    print(f"\n{n} combinations: {len(seen['own'])} distinct hashes on the machine's own "
          f"settings, {len(seen['mode'])} in the reproducible mode")  # fmt: skip
    return 0 if len(seen["mode"]) == 1 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe", action="store_true", help="run the probe in this process")
    parser.add_argument("--quick", action="store_true", help="only the extreme of each axis")
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe()))
        return 0
    return run_matrix(args.quick)


if __name__ == "__main__":
    sys.exit(main())
