"""Make the built book work without a network.

- MathJax: Sphinx points it at a CDN by default. This extension points ``mathjax_path`` at
  ``_static/mathjax/tex-chtml.js`` and, after the HTML build, copies MathJax 3's browser files
  from the installed ``django-static-mathjax`` wheel (pure static files, no Django needed) into
  ``_build/html/_static/mathjax``.
- Thebe: Jupyter Book always loads sphinx-thebe, whose only job is to fetch thebe from a CDN
  when a reader clicks "live code"; the book has no such button (``launch_buttons.thebe`` is
  off), and sphinx-thebe 0.3.1 declares its inline constants twice per page, a JavaScript error.
  Its scripts are left out of every page.
- Theme mode: pydata-sphinx-theme 0.17 reads the light/dark mode from ``localStorage`` and, on a
  reader's first visit, finds none and logs a console error. A one-line script gives it the
  default, ``auto``, before the theme looks.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

MATHJAX_ENTRY = "tex-chtml.js"
# The speech-rule engine and the SVG/full bundles are large and unused by tex-chtml.js.
DEFAULT_MODE_JS = (
    "document.documentElement.dataset.mode = document.documentElement.dataset.mode || 'auto';"
)
SKIP = shutil.ignore_patterns("sre", "*-full*.js", "*svg*.js", "mml-*.js", "node-main.js")


def mathjax_source() -> Path:
    try:
        root = Path(str(resources.files("mathjax"))) / "static" / "mathjax" / "es5"
    except ModuleNotFoundError as err:
        raise ExtensionError(
            "offline_mathjax needs the package django-static-mathjax (pip install "
            "django-static-mathjax==3.2.2.1)"
        ) from err
    if not (root / MATHJAX_ENTRY).is_file():
        raise ExtensionError(
            f"no {MATHJAX_ENTRY} under {root}: is django-static-mathjax installed?"
        )
    return root


def use_local_mathjax(app: Sphinx, config) -> None:
    mathjax_source()  # fail early, before a long build, if the files are missing
    config.mathjax_path = f"mathjax/{MATHJAX_ENTRY}"  # relative paths are under _static/


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(mathjax_source(), target, ignore=SKIP)


def drop_thebe(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    scripts = context.get("script_files", [])
    scripts[:] = [
        script
        for script in scripts
        if "THEBE_JS_URL" not in str(getattr(script, "attributes", {}).get("body", ""))
        and not str(script).endswith("sphinx-thebe.js")
    ]


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", use_local_mathjax)
    app.connect("html-page-context", drop_thebe)
    app.add_js_file(None, body=DEFAULT_MODE_JS, priority=100)
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
