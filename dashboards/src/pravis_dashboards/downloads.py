"""The Content-Disposition of a download, per RFC 6266 with an RFC 5987 UTF-8 name (pure: no I/O).

Written here because neither Starlette nor our other dependencies offer it as a function: Starlette's
FileResponse builds the header inline, without an ASCII fallback name; Werkzeug's send_file likewise.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

UNSAFE_IN_FILE_NAMES = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
NOT_PLAIN_ASCII = re.compile(r"[^A-Za-z0-9._-]")
ATTR_CHAR = "!#$&+-.^_`|~"
"""RFC 5987 attr-char besides letters and digits: what may stay unencoded in `filename*`."""


def attachment(filename: str) -> str:
    """`attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded name>`.

    Characters no file system takes (controls, slashes, quotes, ...) become `_` first; the fallback keeps only
    letters, digits, `.`, `_` and `-` (accents stripped, the rest `_`), so neither part can close its value
    or add a parameter, whatever the name holds."""
    name = UNSAFE_IN_FILE_NAMES.sub("_", filename)
    unaccented = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    fallback = NOT_PLAIN_ASCII.sub("_", unaccented) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe=ATTR_CHAR)}"
