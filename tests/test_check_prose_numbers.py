import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import check_prose_numbers as check  # noqa: E402


@pytest.mark.parametrize(
    "text, expected",
    [
        ("accuracy 0.747 and 95.7% of cycles", ["0.747", "95.7"]),
        ("an error of 0.0063, a beta of 0.03 and 1.5 s", []),  # two digits or fewer
        ("{glue:text}`acc:.3f` and `x = 0.747` and ``0.123``", []),
        ("{cite:p}`smith2020` see [Table 1](https://x.org/v1.234)", []),
        ("```python\nx = 0.747\n```\nthen 12.5 and 2,048.5", ["12.5", "2,048.5"]),
        ("version 3.11.2 and section 4.1", []),  # dotted versions are no decimals
        ("a -1.25 shift", ["-1.25"]),
    ],
)
def test_prose_numbers(text, expected):
    assert check.prose_numbers(text) == expected


def test_problems_and_allow_list(tmp_path):
    cells = [{"cell_type": "markdown", "source": ["It scores 0.913 here."]},
             {"cell_type": "code", "source": ["x = 0.913"], "outputs": []}]  # fmt: skip
    notebook = tmp_path / "ch.ipynb"
    notebook.write_text(json.dumps({"cells": cells}))
    page = tmp_path / "page.md"
    page.write_text("Python 3.11 and 0.25")
    found = check.problems([notebook, page], {})
    assert len(found) == 2 and "0.913 is typed by hand" in found[0]
    assert check.problems([notebook, page], {("ch.ipynb", "0.913"): "x", ("page.md", "3.11"): "y"}) == []


def test_allow_list_entries_need_a_reason(tmp_path):
    path = tmp_path / "allowed.toml"
    path.write_text('[[number]]\nfile = "a.md"\nvalue = "1.25"\nwhy = ""\n')
    with pytest.raises(ValueError, match="needs a why"):
        check.load_allowed(path)
    assert check.main([]) == 2


def test_the_book_types_no_measured_number_by_hand():
    root = Path(__file__).resolve().parents[1]
    paths = sorted(root.glob("notebooks/*.ipynb")) + sorted(root.glob("book/*.md"))
    assert check.problems(paths, check.load_allowed()) == []
