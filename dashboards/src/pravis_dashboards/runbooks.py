"""The on-call runbooks (runbooks.md, shipped in this package; docs/runbooks.md links to it) as one HTML page.

Headings get the anchors GitHub gives them, so the links alerts and Prometheus rules carry
(`<dashboards>/runbooks#api_error_rate`, `#pravisgatewayerrors`) land on the same section here as in a
rendering of the Markdown file, and the file's own `(#...)` cross-links keep working."""

from __future__ import annotations

import html
import re
from importlib.resources import files
from itertools import pairwise

from markdown_it import MarkdownIt

SOURCE = files("pravis_dashboards") / "runbooks.md"
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Pravis · {title}</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/static/dashboards.css">
</head>
<body>
  <header>
    <h1>Pravis</h1>
    <nav>{nav}</nav>
  </header>
  <main class="runbooks">
{body}
  </main>
</body>
</html>
"""


def heading_anchor(text: str) -> str:
    """GitHub's fragment for a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def render(markdown: str) -> tuple[str, str]:
    """The page's title (its first heading) and its body HTML, every heading carrying an `id`; a repeated
    heading gets `-1`, `-2`, ... as on GitHub. Raw HTML in the Markdown is escaped, not passed through."""
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = parser.parse(markdown)
    seen: dict[str, int] = {}
    title = ""
    for opening, inline in pairwise(tokens):
        if opening.type != "heading_open":
            continue
        text = "".join(
            child.content for child in inline.children or [] if child.type in ("text", "code_inline")
        )
        title = title or text
        anchor = heading_anchor(text)
        repeats = seen.get(anchor, 0)
        seen[anchor] = repeats + 1
        opening.attrSet("id", f"{anchor}-{repeats}" if repeats else anchor)
    return title, parser.renderer.render(tokens, parser.options, {})


def runbooks_page(nav: str) -> str:
    """The whole page under the dashboards' header; `nav` is the header's links, as on every other page."""
    title, body = render(SOURCE.read_text(encoding="utf-8"))
    return PAGE.format(title=html.escape(title), nav=nav, body=body)
