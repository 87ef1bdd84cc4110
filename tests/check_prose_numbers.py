"""Flag measured-looking numbers typed into the book's prose, checked by `make test`.

Every number the prose quotes from a computation must be glued (``{glue:text}`name:.3f```), so
strict nbval re-checks it; a number typed by hand goes stale silently when the code changes.
This check finds, in the markdown of every notebook and book page, each decimal number with
three or more significant digits (``0.747``, ``95.7%``, ``2.31``) outside code, glue roles,
citations and links, and fails unless the number is on the allow-list
``tests/prose_numbers_allowed.toml`` (literature values, fixed hyperparameters), where each
entry says why it may be typed.

Usage: python tests/check_prose_numbers.py notebooks/*.ipynb book/*.md
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

ALLOWED = Path(__file__).with_name("prose_numbers_allowed.toml")
# Roles and code spans whose content is not prose: {glue:text}`...`, {cite:p}`...`, `code`.
ROLE_OR_CODE = re.compile(r"\{[a-z:-]+\}`[^`]*`|``[^`]*``|`[^`]*`")
FENCE = re.compile(r"^(`{3,}|:{3,}).*?^\1", re.MULTILINE | re.DOTALL)
LINK_TARGET = re.compile(r"\]\([^)]*\)|https?://\S+")
DECIMAL = re.compile(r"(?<![\w.])[-+]?\d[\d,]*\.\d+(?![\w.])")


def significant_digits(number: str) -> int:
    """Significant digits of a decimal literal: ``0.0063`` -> 2, ``95.7`` -> 3, ``1.50`` -> 3."""
    digits = number.lstrip("+-").replace(",", "").replace(".", "").lstrip("0")
    return len(digits)


def prose_numbers(markdown: str) -> list[str]:
    """Decimal numbers with >= 3 significant digits in ``markdown``'s prose, in order."""
    text = FENCE.sub(" ", markdown)
    text = ROLE_OR_CODE.sub(" ", text)
    text = LINK_TARGET.sub(" ", text)
    return [m for m in DECIMAL.findall(text) if significant_digits(m) >= 3]


def markdown_of(path: Path) -> list[str]:
    """The markdown cells of a notebook, or the whole text of a ``.md`` page."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    return [path.read_text(encoding="utf-8")]


def load_allowed(path: Path = ALLOWED) -> dict[tuple[str, str], str]:
    """``(file name, number) -> why`` from the allow-list; every entry needs a ``why``."""
    allowed = {}
    for entry in tomllib.loads(path.read_text(encoding="utf-8"))["number"]:
        if not entry.get("why", "").strip():
            raise ValueError(f"{path}: the entry for {entry['value']} in {entry['file']} needs a why")
        allowed[(entry["file"], entry["value"])] = entry["why"]
    return allowed


def problems(paths: list[Path], allowed: dict[tuple[str, str], str]) -> list[str]:
    found = []
    for path in paths:
        for index, markdown in enumerate(markdown_of(path)):
            for number in prose_numbers(markdown):
                if (path.name, number) not in allowed:
                    found.append(f"{path}: markdown cell {index}: {number} is typed by hand; glue "
                                 "it, or allow-list it in tests/prose_numbers_allowed.toml")  # fmt: skip
    return found


def main(paths: list[str]) -> int:
    if not paths:
        print("check_prose_numbers: no files given")
        return 2
    found = problems([Path(p) for p in paths], load_allowed())
    for problem in found:
        print(problem)
    print(f"check_prose_numbers: {len(paths)} files, {len(found)} numbers typed by hand")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
