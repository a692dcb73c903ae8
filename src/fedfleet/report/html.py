"""A self-contained HTML report: headings, tables and PNG figures saved beside the page."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedfleet.paths import write_output

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}
th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
img{max-width:100%;margin:0.5em 0}
code{background:#f6f6f6;padding:1px 4px}
"""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape("" if value is None else str(value))


@dataclass
class HtmlReport:
    """Builds a report page piece by piece; figures are PNG files in the page's folder.

    Parameters
    ----------
    title : str
        Page title and first heading.
    """

    title: str
    _parts: list[str] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> HtmlReport:
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")
        return self

    def paragraph(self, text: str) -> HtmlReport:
        self._parts.append(f"<p>{html.escape(text)}</p>")
        return self

    def table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> HtmlReport:
        """A table with one row per mapping; columns default to the first row's keys."""
        if not rows:
            return self.paragraph("(no rows)")
        columns = list(columns or rows[0].keys())
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows
        )
        self._parts.append(f"<table><tr>{head}</tr>{body}</table>")
        return self

    def image(self, file_name: str, caption: str = "") -> HtmlReport:
        """Reference a PNG saved in the same folder as the page."""
        alt = html.escape(caption or file_name)
        self._parts.append(f'<figure><img src="{html.escape(file_name)}" alt="{alt}">'
                           f"<figcaption>{alt}</figcaption></figure>")
        return self

    def render(self) -> str:
        body = "\n".join(self._parts)
        title = html.escape(self.title)
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
                f"<style>{_STYLE}</style></head><body><h1>{title}</h1>\n{body}\n</body></html>\n")

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_output(path, self.render())
