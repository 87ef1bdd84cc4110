"""The book's diagrams are made by book/figures/src: regenerating them gives the committed files."""

import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

FIGURES = Path(__file__).resolve().parents[1] / "book" / "figures"
sys.path.insert(0, str(FIGURES / "src"))
import make_figures  # noqa: E402


@pytest.mark.parametrize("make", make_figures.FIGURES, ids=lambda make: make.__name__)
def test_committed_svg_is_what_the_code_draws(tmp_path, make):
    written = Path(make().save(tmp_path))
    committed = FIGURES / written.name
    assert committed.exists(), f"{written.name} is drawn but not committed"
    assert written.read_text() == committed.read_text(), (
        f"{written.name} differs from the code: run python book/figures/src/make_figures.py"
    )
    root = ElementTree.fromstring(committed.read_text())
    assert root.find("{http://www.w3.org/2000/svg}title") is not None


def test_every_committed_svg_is_drawn_by_the_code(tmp_path):
    drawn = {Path(make().save(tmp_path)).name for make in make_figures.FIGURES}
    assert drawn == {svg.name for svg in FIGURES.glob("*.svg")}
