"""Open every page of the built book in headless Chromium and check what a reader would see.

For each page listed in `_toc.yml`: HTTP 200, no JavaScript console errors, no request leaving
the machine, every image loaded, math typeset by the book's own MathJax, no code, output,
table or displayed formula wider than the text column, no reStructuredText shown raw, every
internal link and anchor resolving. And every diagram in `book/figures/` shown, loaded, on some
page. A full-page screenshot of each page goes to `_build/screenshots/`.

Usage: python tests/browser/check_book.py _build/html
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
ROOT = Path(__file__).resolve().parents[2]


def toc_pages(toc_path: Path) -> list[str]:
    """Every document of `_toc.yml`, in reading order, as paths without suffix."""
    toc = yaml.safe_load(toc_path.read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [re.sub(r"\.(md|ipynb)$", "", page) for page in pages]


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve `directory` on a free loopback port in a background thread."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@functools.cache
def anchors_of(file: Path) -> frozenset[str]:
    """The ids a page defines."""
    return frozenset(re.findall(r'\sid="([^"]+)"', file.read_text(encoding="utf-8")))


def broken_links(hrefs: list[str], base: str, html_dir: Path) -> list[str]:
    """Internal links whose file or anchor does not exist in the build."""
    broken = []
    for href in sorted(set(hrefs)):
        if not href.startswith(base):
            continue  # an external link: not followed, the book must read offline
        parts = urlsplit(href)
        target = html_dir / unquote(parts.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{href} (no such file)")
        elif parts.fragment and target.suffix == ".html":
            if unquote(parts.fragment) not in anchors_of(target):
                broken.append(f"{href} (no anchor #{parts.fragment})")
    return broken


def figures_missing(loaded: set[str], figure_dir: Path = ROOT / "book" / "figures") -> list[str]:
    """The diagrams of `figure_dir` whose file name is not among the loaded images' names."""
    names = {unquote(urlsplit(src).path).rsplit("/", 1)[-1] for src in loaded}
    return sorted(svg.name for svg in figure_dir.glob("*.svg") if svg.name not in names)


# Code, outputs, tables and displayed formulas wider than the text column (a reader would have to
# scroll, or would never see their end): the first characters of each.
CUT_OFF = """() => {
  const wide = el => el.scrollWidth > el.clientWidth + 1;
  const found = [];
  for (const pre of document.querySelectorAll('div.cell pre')) {
    if (wide(pre)) found.push('code/output ' + pre.textContent.trim().slice(0, 60));
  }
  const article = document.querySelector('article').getBoundingClientRect();
  for (const table of document.querySelectorAll('div.cell table')) {
    if (table.getBoundingClientRect().right > article.right + 1) {
      found.push('table ' + (table.innerText || '').trim().slice(0, 60));
    }
  }
  for (const eq of document.querySelectorAll('mjx-container[display="true"]')) {
    const math = eq.querySelector('mjx-math');
    if (math && math.getBoundingClientRect().width > eq.getBoundingClientRect().width + 1) {
      found.push('formula ' + (eq.closest('.math')?.textContent || '').trim().slice(0, 60));
    }
  }
  return found;
}"""
# Directives whose generated reStructuredText was shown as text instead of rendered.
RAW_RST = """() => {
  const m = document.body.innerText.match(/^\\.\\. (py:|auto)\\w+::.*$/m);
  return m ? m[0].slice(0, 80) : '';
}"""


def check_page(
    page, url: str, base: str, html_dir: Path, shot: Path, loaded: set[str] | None = None
) -> list[str]:
    """Load one page and return the problems found on it; add its loaded images to `loaded`."""
    problems: list[str] = []
    console_errors: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and console_errors.append(msg.text))
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    response = page.goto(url, wait_until="networkidle")
    if response is None or response.status != 200:
        problems.append(f"HTTP status {None if response is None else response.status}")
    n_math = page.locator(".math").count()
    if n_math:
        try:
            page.wait_for_function(
                "n => document.querySelectorAll('mjx-container').length >= n",
                arg=n_math,
                timeout=20_000,
            )
        except Exception:  # noqa: BLE001 - the count below reports the failure
            pass
        typeset = page.locator("mjx-container").count()
        if typeset < n_math:
            problems.append(f"math not typeset: {typeset} of {n_math} formulas rendered")
    page.wait_for_function("Array.from(document.images).every(img => img.complete)")
    bad_images = page.evaluate(
        "Array.from(document.images).filter(img => !(img.naturalWidth > 0)).map(img => img.src)"
    )
    problems += [f"image did not load: {src}" for src in bad_images]
    if loaded is not None:
        loaded.update(page.evaluate(
            "Array.from(document.images).filter(img => img.naturalWidth > 0).map(img => img.src)"
        ))  # fmt: skip
    problems += [f"runs off the page: {text}" for text in page.evaluate(CUT_OFF)]
    if raw := page.evaluate(RAW_RST):
        problems.append(f"raw reStructuredText shown: {raw}")
    hrefs = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    problems += [f"broken link: {link}" for link in broken_links(hrefs, base, html_dir)]
    problems += [f"console error: {text}" for text in console_errors]
    page.screenshot(path=str(shot), full_page=True)
    return problems


def main(html_dir: str) -> int:
    html_dir = Path(html_dir).resolve()
    if not shutil.which("chromium") and not Path(CHROMIUM).exists():
        print(
            "test-browser needs Debian's package `chromium` (apt-get install chromium); "
            f"{CHROMIUM} was not found"
        )
        return 1
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("test-browser needs the Python package `playwright` (see requirements.txt)")
        return 1
    pages = toc_pages(ROOT / "_toc.yml")
    shots = html_dir.parent / "screenshots"
    shots.mkdir(exist_ok=True)
    server, base = serve(html_dir)
    failed = 0
    outside: list[str] = []
    loaded: set[str] = set()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            context = browser.new_context(viewport={"width": 1280, "height": 900})

            def only_loopback(route):
                if route.request.url.startswith(base):
                    route.continue_()
                else:  # the book must work offline: record and refuse anything else
                    outside.append(route.request.url)
                    route.abort()

            context.route("**/*", only_loopback)
            for name in pages:
                page = context.new_page()
                url = f"{base}/{name}.html"
                problems = check_page(
                    page, url, base, html_dir, shots / f"{name.replace('/', '_')}.png", loaded
                )
                problems += [f"request left the machine: {u}" for u in outside]
                outside.clear()
                page.close()
                print(f"{'ok    ' if not problems else 'FAILED'} {name}")
                for problem in problems:
                    print(f"         - {problem}")
                failed += bool(problems)
            browser.close()
    finally:
        server.shutdown()
    if missing := figures_missing(loaded):
        print(f"FAILED diagrams never shown on any page: {', '.join(missing)}")
        failed += 1
    print(f"screenshots: {shots}")
    print(f"{len(pages) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "_build/html"))
