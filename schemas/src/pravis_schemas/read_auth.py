"""Optional credentials for the read side: the dashboards (`PRAVIS_DASHBOARDS_AUTH`) and the stream worker's
live API (`PRAVIS_STREAM_LIVE_AUTH`, which the dashboards also read to call it). One setting string, parsed,
checked and turned into the client's header here, so the server and its client cannot disagree. Pure: no I/O.

- `basic:<user>:<password>`: HTTP basic auth (RFC 7617). A browser asks the person once, then sends it with
  every request to the origin (pages, their fetch() calls, downloads): the pages need no code for it.
- `token:<secret>`: `Authorization: Bearer <secret>` (RFC 6750), for programs: the dashboards' calls to the
  live API, scripts. A browser never sends a bearer token by itself; pages behind one would have to carry it.

Unset means open, which is the loopback default; anything reachable beyond loopback should set one.
Comparisons are constant-time (`hmac.compare_digest`) on the UTF-8 bytes. `basic_credentials` and
`credentials_match` are also the embedded warehouse's reading of ClickHouse's Basic auth, so every server
here parses `Authorization: Basic` and compares what it carries one way.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import AfterValidator, SecretStr

Scheme = Literal["basic", "bearer"]
Refusal = Literal["missing_credentials", "wrong_credentials"]
REALM = "pravis"


@dataclass(frozen=True)
class ReadAuth:
    scheme: Scheme
    user: str = field(repr=False)
    secret: SecretStr

    @classmethod
    def parse(cls, setting: str | SecretStr) -> ReadAuth:
        """`token:<secret>` or `basic:<user>:<password>`; a ValueError names the shape, never the secret."""
        text = setting.get_secret_value() if isinstance(setting, SecretStr) else setting
        kind, _, rest = text.partition(":")
        if kind == "token" and rest:
            return cls("bearer", "", SecretStr(rest))
        user, colon, password = rest.partition(":")
        if kind == "basic" and user and colon and password:
            return cls("basic", user, SecretStr(password))
        raise ValueError("read-side auth must be 'token:<secret>' or 'basic:<user>:<password>' (non-empty)")

    @property
    def challenge(self) -> str:
        """The WWW-Authenticate value of a 401."""
        if self.scheme == "basic":
            return f'Basic realm="{REALM}", charset="UTF-8"'
        return f'Bearer realm="{REALM}"'

    def authorization(self) -> str:
        """The Authorization header value a client sends."""
        secret = self.secret.get_secret_value()
        if self.scheme == "basic":
            return "Basic " + base64.b64encode(f"{self.user}:{secret}".encode()).decode("ascii")
        return f"Bearer {secret}"

    def check(self, authorization: str | None) -> Refusal | None:
        """None when the request's Authorization header carries these credentials, else why not."""
        if not authorization:
            return "missing_credentials"
        secret = self.secret.get_secret_value()
        if self.scheme == "basic":
            given = basic_credentials(authorization)
            accepted = given is not None and credentials_match(*given, self.user, secret)
            return None if accepted else "wrong_credentials"
        scheme, token = _scheme_and_credentials(authorization)
        if scheme != "bearer" or not token:
            return "wrong_credentials"
        return None if hmac.compare_digest(token.encode(), secret.encode()) else "wrong_credentials"


def _scheme_and_credentials(authorization: str) -> tuple[str, str]:
    """An Authorization header value's scheme, lowercased (schemes are case-insensitive), and the rest."""
    scheme, _, credentials = authorization.strip().partition(" ")
    return scheme.lower(), credentials.strip()


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """The user and password in an `Authorization: Basic <base64(user:password)>` value (RFC 7617), or None
    when it is not one: another scheme, not base64, not UTF-8 or without the colon."""
    scheme, credentials = _scheme_and_credentials(authorization)
    if scheme != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except ValueError:  # binascii.Error and UnicodeDecodeError both are
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def credentials_match(user: str, password: str, expected_user: str, expected_password: str) -> bool:
    """Whether a user and password are the expected ones, in constant time."""
    # Both compared, always, so the time taken tells neither which one was wrong nor how much of it matched.
    user_ok = hmac.compare_digest(user.encode(), expected_user.encode())
    password_ok = hmac.compare_digest(password.encode(), expected_password.encode())
    return user_ok and password_ok


def _valid_setting(value: SecretStr) -> SecretStr:
    ReadAuth.parse(value)
    return value


ReadAuthSetting = Annotated[SecretStr, AfterValidator(_valid_setting)]
"""A settings field holding a read-side credential: masked like any secret, its shape checked at start-up."""
