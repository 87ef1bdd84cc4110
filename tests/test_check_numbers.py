import json
from pathlib import Path

import check_numbers as cn
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize(
    ("tolerance", "committed", "obtained", "accepted"),
    [
        (cn.Tolerance("exact"), 772.0, 772.0, True),
        (cn.Tolerance("exact"), 772.0, 771.0, False),
        (cn.Tolerance("abs", 0.01), 0.9872, 0.9790, True),
        (cn.Tolerance("abs", 0.01), 0.9872, 0.9770, False),
        (cn.Tolerance("rel", 0.1), 0.0060, 0.0065, True),
        (cn.Tolerance("rel", 0.1), 0.0060, 0.0067, False),
        (cn.Tolerance("below", 1e-5), 1.2e-7, 9e-6, True),
        (cn.Tolerance("below", 1e-5), 1.2e-7, 2e-5, False),
        (cn.Tolerance("abs", 1.0), 0.5, float("nan"), False),
    ],
)
def test_tolerance_accepts(tolerance, committed, obtained, accepted):
    assert tolerance.accepts(committed, obtained) is accepted


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[a]\nabs = 0.1\nrel = 0.1\nwhy = "x"\n', "exactly one of"),
        ("[a]\nabs = 0.1\n", "needs a 'why'"),
        ('[a]\nabs = -1\nwhy = "x"\n', "must be >= 0"),
        ('[a]\nexact = 1\nwhy = "x"\n', "exact = true"),
    ],
)
def test_bad_tolerance_files_are_refused(tmp_path, text, message):
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        cn.load_tolerances(path)


def test_compare_reports_each_kind_of_row():
    tolerances = {"a": cn.Tolerance("abs", 0.1), "b": cn.Tolerance("abs", 0.1),
                  "c": cn.Tolerance("abs", 0.1), "d": cn.Tolerance("abs", 0.1)}  # fmt: skip
    rows = cn.compare({"a": 1.0, "b": 1.0, "c": 1.0, "e": 1.0},
                      {"a": 1.0, "b": 1.05, "c": 2.0, "d": 1.0, "e": 1.0}, tolerances)  # fmt: skip
    assert [(r.name, r.status) for r in rows] == [
        ("a", "same bits"), ("b", "within"), ("c", "OUT"), ("e", "NO TOLERANCE"),
        ("d", "NOT COMMITTED"),
    ]  # fmt: skip
    assert [r.ok for r in rows] == [True, True, False, False, False]
    assert "±0.1" in cn.format_rows(rows) and "OUT" in cn.format_rows(rows)
    rows = cn.compare({"a": 1.0}, {}, tolerances)
    assert rows[0].status == "MISSING" and not rows[0].ok


def test_fingerprint_sees_the_last_bit():
    assert cn.fingerprint({"a": 0.1, "b": 2.0}) == cn.fingerprint({"b": 2.0, "a": 0.1})
    assert cn.fingerprint({"a": 0.1}) != cn.fingerprint({"a": 0.1 + 2**-56})


def test_every_glued_number_has_exactly_one_tolerance():
    glued = {}
    for path in NOTEBOOKS:
        for name in cn.glued_values(json.loads(path.read_text(encoding="utf-8"))):
            assert name not in glued, f"{name} is glued by {glued.get(name)} and {path.name}"
            glued[name] = path.name
    tolerances = cn.load_tolerances()
    assert sorted(set(glued) - set(tolerances)) == [], "glued numbers without a tolerance"
    assert sorted(set(tolerances) - set(glued)) == [], "tolerances for numbers nobody glues"


def _notebook(path: Path, committed: float) -> Path:
    cell = nbformat.v4.new_code_cell("from myst_nb import glue\nglue('x', 1.5, display=False)")
    cell.outputs = [nbformat.v4.new_output(
        "display_data", data={cn.RECORD: repr(committed)},
        metadata={"scrapbook": {"name": "x", "mime_prefix": "application/papermill.record/"}},
    )]  # fmt: skip
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    return path


def test_main_passes_within_tolerance_and_fails_outside_it(tmp_path, capsys):
    tolerances = tmp_path / "t.toml"
    tolerances.write_text('[x]\nabs = 0.1\nwhy = "a test"\n')
    same = _notebook(tmp_path / "same.ipynb", 1.5)
    near = _notebook(tmp_path / "near.ipynb", 1.45)
    far = _notebook(tmp_path / "far.ipynb", 2.0)
    before = far.read_text()
    assert cn.main(["--tolerances", str(tolerances), str(same), str(near)]) == 0
    out = capsys.readouterr().out
    assert "same bits" in out and "within" in out and "2 glued numbers: 2 within" in out
    assert cn.main(["--tolerances", str(tolerances), str(far)]) == 1
    assert "OUT" in capsys.readouterr().out
    assert far.read_text() == before  # the committed notebook is never rewritten
