"""Tiny helpers that write the book's diagrams as plain, readable SVG (one shared style)."""

from __future__ import annotations

import re
from html import escape

PALETTE = {
    # name: (stroke, fill)  -- matplotlib tab10, light fills with the darker stroke
    "blue": ("#1f77b4", "#dbe9f6"),
    "orange": ("#e8710a", "#ffe8d1"),  # stroke a shade darker than #ff7f0e for contrast
    "green": ("#2ca02c", "#dcf2d9"),
    "red": ("#d62728", "#fadbdb"),
    "purple": ("#9467bd", "#ece3f5"),
    "gray": ("#6f6f6f", "#efefef"),
    "white": ("#6f6f6f", "#ffffff"),
}
INK = "#222222"
ARROW_INK = "#333333"

FONT = '"DejaVu Sans", Helvetica, Arial, sans-serif'
MONO = '"DejaVu Sans Mono", Menlo, Consolas, monospace'


class Figure:
    def __init__(self, name: str, width: int, height: int, title: str, desc: str):
        self.name, self.w, self.h = name, width, height
        self.title, self.desc = title, desc
        self.items: list[str] = []
        self.prefix = re.sub(r"[^a-z0-9]", "", name.lower())[:12]

    # ---------------------------------------------------------------- output
    def svg(self) -> str:
        p = self.prefix
        markers = []
        for color, ink in [("dark", ARROW_INK)] + [(k, v[0]) for k, v in PALETTE.items()]:
            markers.append(
                f'    <marker id="{p}-arrow-{color}" viewBox="0 0 10 10" refX="9" refY="5" '
                f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
                f'<path d="M0,0.5 L10,5 L0,9.5 z" fill="{ink}"/></marker>'
            )
        fills = "\n".join(
            f"    .{k} {{ fill: {fill}; stroke: {stroke}; }}" for k, (stroke, fill) in PALETTE.items()
        )
        inks = "\n".join(f"    .ink-{k} {{ fill: {stroke}; }}" for k, (stroke, _) in PALETTE.items())
        head = f"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.w} {self.h}" width="{self.w}" height="{self.h}" role="img" aria-labelledby="{p}-title {p}-desc">
  <title id="{p}-title">{escape(self.title)}</title>
  <desc id="{p}-desc">{escape(self.desc)}</desc>
  <style>
    text {{ font-family: {FONT}; font-size: 14px; fill: {INK}; }}
    .mono {{ font-family: {MONO}; font-size: 13px; }}
    .small {{ font-size: 12.5px; }}
    .big {{ font-size: 15px; }}
    .bold {{ font-weight: bold; }}
    .italic {{ font-style: italic; }}
    .muted {{ fill: #555555; }}
    .box {{ stroke-width: 1.5; }}
    .thin {{ stroke-width: 1; }}
    .dashed {{ stroke-dasharray: 5 4; }}
    .faded {{ opacity: 0.45; }}
{fills}
{inks}
  </style>
  <defs>
{chr(10).join(markers)}
  </defs>
  <rect x="0" y="0" width="{self.w}" height="{self.h}" fill="#ffffff"/>
"""
        body = "\n".join("  " + item for item in self.items)
        return head + body + "\n</svg>\n"

    def save(self, directory) -> str:
        path = f"{directory}/{self.name}.svg"
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg())
        return path

    # ---------------------------------------------------------------- primitives
    def raw(self, s: str) -> None:
        self.items.append(s)

    def comment(self, s: str) -> None:
        self.items.append(f"<!-- {escape(s)} -->")

    def rect(self, x, y, w, h, color="gray", rx=8, cls="box", extra=""):
        self.items.append(
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="{rx}" class="{cls} {color}"{extra}/>'
        )

    def text(self, x, y, s, cls="", anchor="middle", extra=""):
        """Text with light markup: a_{sub} and a^{sup} become tspans."""
        klass = f' class="{cls}"' if cls else ""
        self.items.append(
            f'<text x="{x}" y="{y}" text-anchor="{anchor}"{klass}{extra}>{markup(s)}</text>'
        )

    def box(self, x, y, w, h, color, lines, rx=8, cls="box", line_gap=17, extra=""):
        """A rounded box with centred lines; each line is a str or (str, css classes)."""
        self.rect(x, y, w, h, color, rx=rx, cls=cls, extra=extra)
        lines = [(ln, "") if isinstance(ln, str) else ln for ln in lines]
        n = len(lines)
        cy = y + h / 2
        first = cy - (n - 1) * line_gap / 2 + 5
        for i, (s, c) in enumerate(lines):
            self.text(x + w / 2, round(first + i * line_gap, 1), s, cls=c)

    def line(self, points, color="dark", width=1.5, dashed=False, arrow=True, start_arrow=False,
             extra=""):
        d = "M" + " L".join(f"{px},{py}" for px, py in points)
        ink = ARROW_INK if color == "dark" else PALETTE[color][0]
        marker = f' marker-end="url(#{self.prefix}-arrow-{color})"' if arrow else ""
        if start_arrow:
            marker += f' marker-start="url(#{self.prefix}-arrow-{color})"'
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        self.items.append(
            f'<path d="{d}" fill="none" stroke="{ink}" stroke-width="{width}"'
            f' stroke-linejoin="round"{dash}{marker}{extra}/>'
        )

    def arrow(self, *points, color="dark", dashed=False, width=1.5):
        self.line(list(points), color=color, dashed=dashed, width=width)

    def circle(self, cx, cy, r, color="gray", cls="box", extra=""):
        self.items.append(f'<circle cx="{cx}" cy="{cy}" r="{r}" class="{cls} {color}"{extra}/>')

    def node(self, cx, cy, symbol, color="gray", r=12, size=17):
        self.circle(cx, cy, r, color)
        self.text(cx, cy + size * 0.36, symbol, extra=f' style="font-size: {size}px"')

    def dot(self, cx, cy, r=3, ink=ARROW_INK):
        self.items.append(f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="{ink}"/>')


_TOKEN = re.compile(r"([_^])\{([^{}]*)\}")


def markup(s: str) -> str:
    """Escape text; turn x_{i} / x^{2} into sub/superscript tspans (dy-based, portable)."""
    out, pos = [], 0
    for m in _TOKEN.finditer(s):
        out.append(escape(s[pos:m.start()]))
        kind, inner = m.group(1), escape(m.group(2))
        dy = 4 if kind == "_" else -6
        out.append(f'<tspan dy="{dy}" style="font-size: 75%">{inner}</tspan><tspan dy="{-dy}">\u200b</tspan>')
        pos = m.end()
    out.append(escape(s[pos:]))
    return "".join(out)
