"""The API page documents every module of the library, each rendered as reStructuredText."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_module_is_on_the_api_page():
    page = (ROOT / "book" / "api.md").read_text(encoding="utf-8")
    modules = {p.stem for p in (ROOT / "tvae_lib").glob("*.py") if p.stem != "__init__"}
    documented = set(re.findall(r"^\.\. automodule:: tvae_lib\.(\w+)$", page, re.MULTILINE))
    assert documented == modules
    # MyST would show the reStructuredText autodoc writes as text: only eval-rst renders it
    assert "{automodule}" not in page
    assert page.count("```{eval-rst}") == len(modules)
