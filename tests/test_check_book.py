"""The browser test's own logic: which pages it visits and which links it calls broken."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "browser"))
import check_book  # noqa: E402


def test_toc_pages_lists_every_document_in_order(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        "format: jb-book\nroot: book/intro\nparts:\n"
        "  - caption: A\n    chapters:\n      - file: notebooks/00_data.ipynb\n"
        "        sections:\n          - file: book/extra.md\n"
        "  - caption: B\n    chapters:\n      - file: book/api\n"
    )
    assert check_book.toc_pages(toc) == [
        "book/intro",
        "notebooks/00_data",
        "book/extra",
        "book/api",
    ]


def test_the_real_toc_starts_at_the_introduction():
    pages = check_book.toc_pages(check_book.ROOT / "_toc.yml")
    assert pages[0] == "book/intro" and "notebooks/00_data" in pages


def test_broken_links_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "a.html").write_text('<h1 id="top">A</h1><p id="x y">b</p>')
    (tmp_path / "index.html").write_text("<p>home</p>")
    base = "http://127.0.0.1:1"
    links = [
        f"{base}/book/a.html#top",
        f"{base}/book/a.html#x%20y",
        f"{base}/",
        "https://example.org/elsewhere",  # external: not followed
        f"{base}/book/a.html#missing",
        f"{base}/book/gone.html",
    ]
    broken = check_book.broken_links(links, base, tmp_path)
    assert broken == [
        f"{base}/book/a.html#missing (no anchor #missing)",
        f"{base}/book/gone.html (no such file)",
    ]


def test_figures_missing_names_the_diagrams_no_page_showed(tmp_path):
    (tmp_path / "a.svg").write_text("<svg/>")
    (tmp_path / "b.svg").write_text("<svg/>")
    loaded = {"http://127.0.0.1:8000/_images/a.svg", "http://127.0.0.1:8000/_images/x.png"}
    assert check_book.figures_missing(loaded, tmp_path) == ["b.svg"]
    assert check_book.figures_missing(loaded | {"http://h/_images/b.svg"}, tmp_path) == []
