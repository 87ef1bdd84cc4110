"""Notebook hygiene, checked by `make test` before nbval runs.

For each notebook: its nbval markers are spelt so nbval sees them, its code cells were executed
top to bottom in one fresh kernel (execution counts 1..n), no error output is stored, no stderr
is stored (progress bars and warnings are noise on the page: ``make notebooks`` runs with
``TVAE_PROGRESS=0``), no SVG output is stored (nbval would compare SVG text), a cell that only
glues or asserts is tagged ``remove-input`` (the book shows teaching code, not bookkeeping), no
code line is longer than 88 characters (longer ones run off the page at 1280 px), at most
one code cell in five is exempted from nbval's output comparison, each by the cell tag
``nbval-ignore-output`` (not a marker comment readers would see) with a first comment line
saying why, every cell has an id (nbformat 4.5), and no number is glued pre-rounded
(``glue(name, round(x, 4))`` shown with ``:.3f`` rounds twice, and can differ in the last
digit from the output beside it).

Usage: python tests/check_notebooks.py notebooks/*.ipynb
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

# nbval honours a marker only as a whole comment line: "# NBVAL_IGNORE_OUTPUT".
EXEMPT = re.compile(r"^[ \t]*#+[ \t]*NBVAL_(IGNORE_OUTPUT|SKIP)[ \t]*$", re.MULTILINE)
MISSPELT = re.compile(r"^[ \t]*#+[ \t]*NBVAL_\w++[ \t]*\S.*$", re.MULTILINE)
EXEMPT_TAGS = {"nbval-ignore-output", "nbval-skip"}
MAX_EXEMPT_SHARE = 0.2
MAX_LINE = 88


def only_glue_or_assert(source: str) -> bool:
    """Whether every statement of ``source`` is an ``assert`` or a ``glue(...)`` call."""
    try:
        body = ast.parse(source).body
    except SyntaxError:  # IPython magics
        return False

    def bookkeeping(node: ast.stmt) -> bool:
        if isinstance(node, ast.Assert):
            return True
        call = node.value if isinstance(node, ast.Expr) else None
        return isinstance(call, ast.Call) and getattr(call.func, "id", None) == "glue"

    return bool(body) and all(bookkeeping(node) for node in body)


def rounded_glues(source: str) -> list[str]:
    """Names glued as ``glue(name, round(...))`` (or ``np.round``) in ``source``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "glue":
            value = node.args[1] if len(node.args) > 1 else None
            func = getattr(value, "func", None)
            if isinstance(value, ast.Call) and "round" in (
                getattr(func, "id", None), getattr(func, "attr", None)
            ):
                names.append(ast.literal_eval(node.args[0]) if isinstance(
                    node.args[0], ast.Constant) else "?")  # fmt: skip
    return names


def problems(path: Path) -> list[str]:
    """Everything wrong with one notebook, as sentences."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    found = []
    counts = [c.get("execution_count") for c in code]
    if counts != list(range(1, len(code) + 1)):
        found.append(
            f"execution counts are {counts}, not 1..{len(code)}: re-run it with `make notebooks`"
        )
    if missing := sum("id" not in cell for cell in cells):
        found.append(f"{missing} cell(s) without an id (nbformat 4.5 needs one per cell)")
    exempt = 0
    for index, cell in enumerate(code, start=1):
        source = "".join(cell["source"])
        tags = set(cell.get("metadata", {}).get("tags", []))
        if EXEMPT.search(source) or tags & EXEMPT_TAGS:
            exempt += 1
        if EXEMPT.search(source):
            found.append(
                f"code cell {index}: readers see the NBVAL marker comment; tag the cell "
                f"nbval-ignore-output instead"
            )
        if tags & EXEMPT_TAGS and not source.lstrip().startswith("#"):
            found.append(f"code cell {index} is exempt from nbval: say why in a first comment line")
        for name in rounded_glues(source):
            found.append(f"code cell {index} glues {name!r} rounded: glue the number itself, "
                         f"the prose's format rounds it")  # fmt: skip
        for line in MISSPELT.findall(source):
            found.append(
                f"code cell {index}: nbval ignores the marker line {line.strip()!r}; "
                f"write the marker alone on its line and the reason on the next"
            )
        for number, line in enumerate(source.split("\n"), start=1):
            if len(line) > MAX_LINE:
                found.append(f"code cell {index} line {number} has {len(line)} characters "
                             f"(at most {MAX_LINE}): {line.strip()[:40]!r}")  # fmt: skip
        if only_glue_or_assert(source) and "remove-input" not in tags:
            found.append(f"code cell {index} only glues or asserts: tag it remove-input")
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr":
                text = "".join(output.get("text", ""))[:60].strip()
                found.append(f"code cell {index} stored stderr ({text!r}...)")
            if output["output_type"] == "error" and "NBVAL_RAISES_EXCEPTION" not in source:
                found.append(f"code cell {index} stored an error ({output.get('ename')})")
            if "image/svg+xml" in output.get("data", {}):
                found.append(f"code cell {index} stored an SVG figure; use PNG")
    if code and exempt > MAX_EXEMPT_SHARE * len(code):
        found.append(
            f"{exempt} of {len(code)} code cells are exempt from nbval's output check "
            f"(at most one in five)"
        )
    return found


def main(paths: list[str]) -> int:
    if not paths:
        print("check_notebooks: no notebooks given")
        return 2
    failed = 0
    for name in paths:
        found = problems(Path(name))
        status = "ok" if not found else "FAILED"
        print(f"{name}: {status}")
        for problem in found:
            print(f"  - {problem}")
        failed += bool(found)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
