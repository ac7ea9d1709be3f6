"""Content-Disposition of the downloads: RFC 6266 parameters that no name can close, extend or break."""

import re
from urllib.parse import unquote

import pytest
from pravis_dashboards.downloads import attachment

# RFC 6266 with exactly two parameters: a quoted-string free of quotes and backslashes (so it cannot end early
# or escape), and an RFC 5987 ext-value of attr-chars and pct-encoded octets.
ATTACHMENT = re.compile(
    r"attachment; filename=\"(?P<fallback>[\x20\x21\x23-\x5b\x5d-\x7e]*)\"; "
    r"filename\*=UTF-8''(?P<encoded>(?:[A-Za-z0-9!#$&+\-.^_`|~]|%[0-9A-F]{2})+)"
)


@pytest.mark.parametrize(
    ("name", "fallback", "utf8"),
    [
        ("active_users.sql", "active_users.sql", "active_users.sql"),
        ("p_ünï_日本.csv", "p_uni___.csv", "p_ünï_日本.csv"),
        ("p_x\"; filename*=UTF-8''evil.exe; a=\".csv", "p_x___filename__UTF-8__evil.exe__a__.csv", None),
        ("p_../../etc\\passwd\r\nSet-Cookie: a=b.csv", "p_.._.._etc_passwd__Set-Cookie__a_b.csv", None),
    ],
)
def test_one_fallback_and_one_utf8_name_and_nothing_else(name: str, fallback: str, utf8: str | None) -> None:
    header = attachment(name)
    match = ATTACHMENT.fullmatch(header)
    assert match, header
    assert match["fallback"] == fallback
    decoded = unquote(match["encoded"], encoding="utf-8", errors="strict")
    if utf8 is not None:
        assert decoded == utf8
    assert not any(c in decoded for c in '/\\"\r\n')
