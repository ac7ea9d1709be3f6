"""The runbooks page: headings carry GitHub's anchors (repeats numbered), raw HTML is escaped, and the page
ships inside the package."""

from importlib.resources import files

from pravis_dashboards.runbooks import render

MARKDOWN = """# Runbooks

Intro with a [cross-link](#api_error_rate).

## Anomaly alerts of the stream tier

### api_error_rate

Text <script>alert(1)</script> and `code`.

### api_error_rate

## The pipeline's own health (Prometheus rules)

### PravisGatewayErrors

| metric | means |
|---|---|
| `up` | scraped |

```sql
SELECT 1;
```
"""


def test_headings_carry_githubs_anchors_and_repeats_are_numbered():
    title, body = render(MARKDOWN)
    assert title == "Runbooks"
    assert '<h1 id="runbooks">Runbooks</h1>' in body
    assert '<h2 id="anomaly-alerts-of-the-stream-tier">' in body
    assert '<h3 id="api_error_rate">api_error_rate</h3>' in body
    assert '<h3 id="api_error_rate-1">api_error_rate</h3>' in body
    assert '<h2 id="the-pipelines-own-health-prometheus-rules">' in body
    assert '<h3 id="pravisgatewayerrors">PravisGatewayErrors</h3>' in body
    assert '<a href="#api_error_rate">cross-link</a>' in body


def test_raw_html_is_escaped_and_tables_and_code_render():
    _, body = render(MARKDOWN)
    assert "<script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<table>" in body and "<td><code>up</code></td>" in body
    assert '<pre><code class="language-sql">SELECT 1;\n</code></pre>' in body


def test_the_runbooks_ship_in_the_package():
    shipped = files("pravis_dashboards") / "runbooks.md"
    assert shipped.is_file() and "### PravisGatewayErrors" in shipped.read_text(encoding="utf-8")
