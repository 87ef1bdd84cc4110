"""Tidy the API page: leave out the "Alias for field number N" docstrings that Python gives
every field of a NamedTuple (each class's own docstring describes its fields)."""

from __future__ import annotations

import re

from sphinx.application import Sphinx

FIELD_ALIAS = re.compile(r"Alias for field number \d+")


def skip_field_aliases(app: Sphinx, what: str, name: str, obj, skip: bool, options) -> bool | None:
    """Skip a member whose whole docstring is a NamedTuple field alias; otherwise no opinion."""
    if FIELD_ALIAS.fullmatch((getattr(obj, "__doc__", None) or "").strip()):
        return True
    return None


def setup(app: Sphinx) -> dict:
    app.connect("autodoc-skip-member", skip_field_aliases)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
