import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import check_notebooks  # noqa: E402


def _notebook(tmp_path: Path, cells: list[dict], ids: bool = True) -> Path:
    if ids:
        cells = [{"id": f"cell-{i}", **cell} for i, cell in enumerate(cells)]
    path = tmp_path / "nb.ipynb"
    path.write_text(
        json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    return path


def _code(source: str, count: int | None, outputs=()) -> dict:
    return {
        "cell_type": "code",
        "source": source,
        "execution_count": count,
        "outputs": list(outputs),
        "metadata": {},
    }


def test_clean_notebook_passes(tmp_path):
    path = _notebook(
        tmp_path,
        [{"cell_type": "markdown", "source": "# t"}, _code("1", 1), _code("", None), _code("2", 2)],
    )
    assert check_notebooks.problems(path) == []
    assert check_notebooks.main([str(path)]) == 0


@pytest.mark.parametrize(
    "cells, match",
    [
        ([_code("1", 2), _code("2", 1)], "execution counts"),
        ([_code("1", None)], "execution counts"),
        ([_code("1", 1, [{"output_type": "error", "ename": "ValueError"}])], "stored an error"),
        (
            [_code("1", 1, [{"output_type": "display_data", "data": {"image/svg+xml": "<svg/>"}}])],
            "SVG",
        ),
        ([_code("# NBVAL_IGNORE_OUTPUT\n# a timing", 1), _code("2", 2)], "exempt"),
        ([_code("# NBVAL_IGNORE_OUTPUT\n# a timing", 1)] + [_code("x", i) for i in range(2, 7)],
         "readers see the NBVAL marker comment"),
        ([_code("glue('a', round(x, 4), display=False)", 1)], "glues 'a' rounded"),
        ([_code("glue('b', np.round(x, 2))", 1)], "glues 'b' rounded"),
        ([_code("# NBVAL_IGNORE_OUTPUT: a timing", 1)], "nbval ignores the marker line"),
        (
            [_code("1", 1, [{"output_type": "stream", "name": "stderr", "text": "10%|#"}])],
            "stored stderr ('10%|#'",
        ),
        ([_code("glue('a', 1, display=False)\nassert a > 0", 1)], "tag it remove-input"),
        ([_code("x = 1  # " + "a" * 80, 1)], "line 1 has 89 characters (at most 88)"),
    ],
)
def test_problems_are_reported(tmp_path, cells, match):
    found = check_notebooks.problems(_notebook(tmp_path, cells))
    assert any(match in problem for problem in found), found
    assert check_notebooks.main([str(tmp_path / "nb.ipynb")]) == 1


def test_expected_error_is_allowed(tmp_path):
    cell = _code(
        "# NBVAL_RAISES_EXCEPTION\n1/0", 1, [{"output_type": "error", "ename": "ZeroDivisionError"}]
    )
    assert (
        check_notebooks.problems(_notebook(tmp_path, [cell] + [_code("x", i) for i in range(2, 7)]))
        == []
    )


def test_main_needs_paths():
    assert check_notebooks.main([]) == 2


def test_tagged_bookkeeping_and_stdout_pass(tmp_path):
    tagged = _code("glue('a', 1, display=False)\nassert 1", 1)
    tagged["metadata"] = {"tags": ["remove-input"]}
    printed = _code("print(1)", 2, [{"output_type": "stream", "name": "stdout", "text": "1"}])
    assert check_notebooks.problems(_notebook(tmp_path, [tagged, printed])) == []
    assert not check_notebooks.only_glue_or_assert("x = 1\nglue('x', x)")
    assert not check_notebooks.only_glue_or_assert("%config InlineBackend.figure_formats = []")


def test_an_exempt_cell_is_tagged_and_says_why(tmp_path):
    others = [_code("x", i) for i in range(2, 7)]
    tagged = _code("# a wall-clock timing\nprint(1)", 1)
    tagged["metadata"] = {"tags": ["nbval-ignore-output"]}
    assert check_notebooks.problems(_notebook(tmp_path, [tagged] + others)) == []
    silent = _code("print(1)", 1)
    silent["metadata"] = {"tags": ["nbval-ignore-output"]}
    found = check_notebooks.problems(_notebook(tmp_path, [silent] + others))
    assert found == ["code cell 1 is exempt from nbval: say why in a first comment line"]
    assert check_notebooks.rounded_glues("glue('a', float(x))\n%timeit x") == []


def test_every_cell_needs_an_id(tmp_path):
    cells = [{"cell_type": "markdown", "source": "# t", "metadata": {}}, _code("1", 1)]
    found = check_notebooks.problems(_notebook(tmp_path, cells, ids=False))
    assert found == ["2 cell(s) without an id (nbformat 4.5 needs one per cell)"]
