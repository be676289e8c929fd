from __future__ import annotations

import hashlib
import hmac

import pytest

from zenoti_bridge import signature
from zenoti_bridge.signature import Verdict

BODY = b'{"event_id":"665ddd69aa5bf36518677db7"}'
SECRETS = [b"current", b"previous"]


def test_signatures_look_like_zenotis() -> None:
    value = signature.sign("current", BODY)
    assert value.startswith("sha256 =")
    pairs = value.removeprefix("sha256 =").split("-")
    assert len(pairs) == 32 and all(p == p.upper() and len(p) == 2 for p in pairs)
    expected = hmac.new(b"current", BODY, hashlib.sha256).hexdigest()
    assert "".join(pairs).lower() == expected


@pytest.mark.parametrize(
    "render",
    [
        lambda v: v,
        lambda v: v.lower(),
        lambda v: v.replace("sha256 =", "sha256="),
        lambda v: v.replace("sha256 =", "SHA256 = "),
        lambda v: v.removeprefix("sha256 =").replace("-", ""),
        lambda v: v.replace("-", ":"),
        lambda v: "  " + v + "  ",
    ],
)
def test_parsing_is_tolerant_of_format_variations(render: object) -> None:
    header = render(signature.sign("current", BODY))  # type: ignore[operator]
    assert signature.verify(BODY, header, SECRETS) is Verdict.VALID


def test_any_configured_secret_may_sign_for_rotation() -> None:
    assert signature.verify(BODY, signature.sign("previous", BODY), SECRETS) is Verdict.VALID


def test_a_wrong_secret_or_changed_body_is_invalid() -> None:
    assert signature.verify(BODY, signature.sign("other", BODY), SECRETS) is Verdict.INVALID
    assert (
        signature.verify(BODY + b" ", signature.sign("current", BODY), SECRETS) is Verdict.INVALID
    )


@pytest.mark.parametrize("header", ["sha256 =zz", "garbage", "sha256 =" + "AB-" * 31 + "A"])
def test_malformed_headers_are_invalid(header: str) -> None:
    assert signature.verify(BODY, header, SECRETS) is Verdict.INVALID


@pytest.mark.parametrize("header", [None, "", "   "])
def test_absent_headers_are_missing(header: str | None) -> None:
    assert signature.verify(BODY, header, SECRETS) is Verdict.MISSING


def test_a_header_may_arrive_as_the_bytes_on_the_wire() -> None:
    header = signature.sign("current", BODY)
    assert signature.verify(BODY, header.encode("latin-1"), SECRETS) is Verdict.VALID
    assert signature.verify(BODY, b"sha256 =zz", SECRETS) is Verdict.INVALID
    assert signature.verify(BODY, b"  ", SECRETS) is Verdict.MISSING


def test_text_that_cannot_be_header_bytes_is_invalid() -> None:
    assert signature.verify(BODY, "sha256 =" + "\u20ac" * 64, SECRETS) is Verdict.INVALID


def test_without_openssl_hmac_the_verdicts_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    body = b'{"event_id": "x"}'
    header = signature.sign("s1", body)
    cases = [
        (header, [b"s1"]),
        (header, [b"s2", b"s1"]),
        (header, [b"s2"]),
        ("sha256 =00", [b"s1"]),
    ]
    with_openssl = [signature.verify(body, h, secrets) for h, secrets in cases]
    monkeypatch.setattr(signature, "_openssl_hmac", None)
    signature._keyed.cache_clear()
    try:
        assert [signature.verify(body, h, secrets) for h, secrets in cases] == with_openssl
    finally:
        signature._keyed.cache_clear()
    assert with_openssl == ["valid", "valid", "invalid", "invalid"]
