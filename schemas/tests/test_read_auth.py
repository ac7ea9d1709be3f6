"""Read-side credentials: the setting's two shapes, the header a client sends, and what the check refuses."""

import base64

import pytest
from pravis_schemas.read_auth import ReadAuth, ReadAuthSetting, basic_credentials, credentials_match
from pydantic import BaseModel, SecretStr, ValidationError


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_token_accepts_its_bearer_header_only() -> None:
    auth = ReadAuth.parse("token:s3cr:et")
    assert auth.authorization() == "Bearer s3cr:et"
    assert auth.check("Bearer s3cr:et") is None
    assert auth.check("bearer  s3cr:et ") is None
    assert auth.check(None) == "missing_credentials"
    assert auth.check("") == "missing_credentials"
    assert auth.check("Bearer s3cr:eT") == "wrong_credentials"
    assert auth.check("Bearer ") == "wrong_credentials"
    assert auth.check(basic("x", "s3cr:et")) == "wrong_credentials"
    assert auth.challenge == 'Bearer realm="pravis"'


def test_basic_checks_user_and_password() -> None:
    auth = ReadAuth.parse("basic:ana:pa:ss wörd")
    assert auth.authorization() == basic("ana", "pa:ss wörd")
    assert auth.check(basic("ana", "pa:ss wörd")) is None
    assert auth.check(basic("ana", "pa:ss word")) == "wrong_credentials"
    assert auth.check(basic("bob", "pa:ss wörd")) == "wrong_credentials"
    assert auth.check("Basic " + base64.b64encode(b"ana").decode()) == "wrong_credentials"
    assert auth.check("Basic !!not-base64!!") == "wrong_credentials"
    assert auth.check("Basic wörd") == "wrong_credentials"
    assert auth.check("Bearer pa:ss wörd") == "wrong_credentials"
    assert auth.challenge == 'Basic realm="pravis", charset="UTF-8"'


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        ("Basic YW5hOnBhOnNz", ("ana", "pa:ss")),
        ("basic  YW5hOg== ", ("ana", "")),
        ("Basic asO2cmc6cHc=", ("jörg", "pw")),
        ("Basic YW5h", None),  # "ana": no colon
        ("Basic /zpwdw==", None),  # b"\xff:pw": not UTF-8
        ("Basic !!!", None),
        ("Basic", None),
        ("Bearer YW5hOnBhOnNz", None),
        ("", None),
    ],
)
def test_basic_credentials_are_read_from_the_header(authorization: str, expected: tuple | None) -> None:
    assert basic_credentials(authorization) == expected


def test_credentials_match_only_when_user_and_password_both_do() -> None:
    assert credentials_match("ana", "pw", "ana", "pw")
    assert not credentials_match("ana", "pw ", "ana", "pw")
    assert not credentials_match("bob", "pw", "ana", "pw")
    assert not credentials_match("", "", "ana", "pw")


@pytest.mark.parametrize(
    "setting", ["", "token:", "basic:ana", "basic:ana:", "basic::pw", "secret", "bearer:x"]
)
def test_malformed_settings_are_refused_with_the_shape_not_the_value(setting: str) -> None:
    with pytest.raises(ValueError) as raised:
        ReadAuth.parse(setting)
    assert str(raised.value) == (
        "read-side auth must be 'token:<secret>' or 'basic:<user>:<password>' (non-empty)"
    )


def test_setting_field_is_masked_and_validated_early() -> None:
    class Settings(BaseModel):
        auth: ReadAuthSetting | None = None

    settings = Settings(auth="token:hidden-value")
    assert isinstance(settings.auth, SecretStr)
    assert "hidden-value" not in repr(settings) and "hidden-value" not in repr(ReadAuth.parse(settings.auth))
    with pytest.raises(ValidationError):
        Settings(auth="token")
