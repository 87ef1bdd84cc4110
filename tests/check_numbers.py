"""Compare the book's glued numbers with a fresh run, within stated tolerances.

Strict nbval demands the committed outputs bit for bit, which only the reproducible numeric mode
on an x86-64 CPU with AVX2 can give (``tvae_lib.numerics``). Elsewhere (an ARM laptop, a GPU,
another PyTorch build) the last digits of trained numbers move. This check re-executes each
notebook from a fresh kernel into memory (the committed file is never touched), reads every
number it glues, and compares it with the committed one within the tolerance that
``tests/glued_tolerances.toml`` states for it. It prints committed, obtained and tolerance side
by side and fails when any number is out, missing or has no tolerance.

Usage: python tests/check_numbers.py [--tolerances FILE] notebooks/*.ipynb
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

TOLERANCES = Path(__file__).with_name("glued_tolerances.toml")
KINDS = ("exact", "abs", "rel", "below")
RECORD = "application/papermill.record/text/plain"


@dataclass(frozen=True)
class Tolerance:
    """How far an obtained number may be from the committed one.

    ``exact``: equal; ``abs``: ``|obtained - committed| <= value``; ``rel``: ``|obtained -
    committed| <= value * |committed|``; ``below``: ``obtained <= value`` (a parity difference
    whose committed value is itself noise).
    """

    kind: str
    value: float = 0.0
    why: str = ""

    def accepts(self, committed: float, obtained: float) -> bool:
        if math.isnan(obtained):
            return False
        if self.kind == "exact":
            return obtained == committed
        if self.kind == "abs":
            return abs(obtained - committed) <= self.value
        if self.kind == "rel":
            return abs(obtained - committed) <= self.value * abs(committed)
        return obtained <= self.value  # "below"

    def __str__(self) -> str:
        return {
            "exact": "exact",
            "abs": f"±{self.value:g}",
            "rel": f"±{self.value:.0%}" if self.value >= 0.01 else f"±{self.value:g} rel",
            "below": f"≤{self.value:g}",
        }[self.kind]


def load_tolerances(path: Path = TOLERANCES) -> dict[str, Tolerance]:
    """Read the tolerance file: one table per glued name with one of ``exact``/``abs``/``rel``/
    ``below`` and a ``why``."""
    table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    tolerances = {}
    for name, entry in table.items():
        kinds = [k for k in KINDS if k in entry]
        if len(kinds) != 1:
            raise ValueError(f"{path}: [{name}] needs exactly one of {KINDS}, got {sorted(entry)}")
        if not entry.get("why"):
            raise ValueError(f"{path}: [{name}] needs a 'why': where the tolerance comes from")
        kind = kinds[0]
        value = 0.0 if kind == "exact" else float(entry[kind])
        if kind == "exact" and entry[kind] is not True:
            raise ValueError(f"{path}: [{name}] write exact = true")
        if value < 0:
            raise ValueError(f"{path}: [{name}] {kind} must be >= 0, got {value}")
        tolerances[name] = Tolerance(kind, value, entry["why"])
    return tolerances


def glued_values(notebook: dict) -> dict[str, float]:
    """Every number a notebook glued with myst-nb, from its outputs (a loaded notebook dict)."""
    values = {}
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is not None:
                values[name] = float(output["data"][RECORD])
    return values


def execute(path: Path, timeout: int = 1800) -> dict:
    """Run a notebook top to bottom in a fresh kernel, in its own folder; return the result."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )  # fmt: skip
    client.execute()
    return json.loads(nbformat.writes(notebook))


@dataclass(frozen=True)
class Row:
    name: str
    committed: float | None
    obtained: float | None
    tolerance: Tolerance | None

    @property
    def status(self) -> str:
        if self.tolerance is None:
            return "NO TOLERANCE"
        if self.committed is None:
            return "NOT COMMITTED"
        if self.obtained is None:
            return "MISSING"
        if not self.tolerance.accepts(self.committed, self.obtained):
            return "OUT"
        return "same bits" if self.obtained == self.committed else "within"

    @property
    def ok(self) -> bool:
        return self.status in {"same bits", "within"}


def compare(
    committed: dict[str, float], obtained: dict[str, float], tolerances: dict[str, Tolerance]
) -> list[Row]:
    """One row per glued name, committed or obtained, in the committed order."""
    names = list(committed) + [n for n in obtained if n not in committed]
    return [Row(n, committed.get(n), obtained.get(n), tolerances.get(n)) for n in names]


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


def format_rows(rows: list[Row]) -> str:
    header = f"  {'glued name':34} {'committed':>11} {'obtained':>11} {'tolerance':>10}  status"
    lines = [header]
    for r in rows:
        tol = "-" if r.tolerance is None else str(r.tolerance)
        lines.append(
            f"  {r.name:34} {_fmt(r.committed):>11} {_fmt(r.obtained):>11} {tol:>10}  {r.status}"
        )
    return "\n".join(lines)


def fingerprint(values: dict[str, float]) -> str:
    """A short SHA-256 of glued numbers: equal fingerprints mean bit-identical numbers."""
    text = json.dumps({k: values[k].hex() for k in sorted(values)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _numeric_setting() -> str:
    keys = ("TVAE_NUMERIC_MODE", "ATEN_CPU_CAPABILITY", "MKL_CBWR", "OMP_NUM_THREADS",
            "TVAE_DEVICE")  # fmt: skip
    shown = [f"{k}={os.environ[k]}" for k in keys if k in os.environ]
    return ", ".join(shown) or "the machine's own defaults (outside the reproducible mode)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--tolerances", type=Path, default=TOLERANCES)
    args = parser.parse_args(argv)
    tolerances = load_tolerances(args.tolerances)
    print(f"check-numbers: {len(args.notebooks)} notebook(s); "
          f"numeric setting: {_numeric_setting()}")  # fmt: skip
    all_rows, all_obtained = [], {}
    for path in args.notebooks:
        committed = glued_values(json.loads(path.read_text(encoding="utf-8")))
        start = time.perf_counter()
        try:
            obtained = glued_values(execute(path))
        except Exception as err:  # a notebook that fails to run fails the check, loudly
            print(f"{path}: FAILED to execute: {type(err).__name__}: {str(err)[-2000:]}")
            obtained = {}
        rows = compare(committed, obtained, tolerances)
        all_rows += rows
        all_obtained.update(obtained)
        bad = sum(not r.ok for r in rows)
        print(f"\n{path} ({time.perf_counter() - start:.0f} s): "
              f"{'ok' if not bad else f'{bad} out of tolerance'}")  # fmt: skip
        print(format_rows(rows), flush=True)
    bad = [r for r in all_rows if not r.ok]
    same = sum(r.status == "same bits" for r in all_rows)
    print(f"\n{len(all_rows)} glued numbers: {len(all_rows) - len(bad)} within tolerance "
          f"({same} bit-identical), {len(bad)} not; fingerprint of the obtained numbers "
          f"{fingerprint(all_obtained)}")  # fmt: skip
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
