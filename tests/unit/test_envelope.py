from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from tests.conftest import payload, payload_names
from zenoti_bridge.envelope import (
    is_object_id,
    object_id_time,
    parse_envelope,
    parse_net_datetime,
    parse_timestamp,
)
from zenoti_bridge.errors import EnvelopeError


def test_seven_fractional_digits_are_read_and_truncated() -> None:
    assert parse_timestamp("2022-03-11T14:22:43.3847049Z") == datetime(
        2022, 3, 11, 14, 22, 43, 384704, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-06-11T17:00:00", datetime(2024, 6, 11, 17, 0, tzinfo=UTC)),
        ("2024-07-05T19:02:17.640823Z", datetime(2024, 7, 5, 19, 2, 17, 640823, tzinfo=UTC)),
        ("2024-06-11T19:00:00+02:00", datetime(2024, 6, 11, 17, 0, tzinfo=UTC)),
        ("2024-06-11T12:00:00.5-0500", datetime(2024, 6, 11, 17, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_timestamps_without_offset_are_utc_and_offsets_are_applied(
    text: str, expected: datetime
) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2024-13-01T00:00:00Z", "2024-06-11", "0001-01-01T00:00:00+01:00"]
)
def test_invalid_timestamps_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        parse_timestamp(text)


def test_dotnet_null_dates_become_none() -> None:
    assert parse_net_datetime("0001-01-01T00:00:00") is None
    assert parse_net_datetime(None) is None
    assert parse_net_datetime("") is None
    assert parse_net_datetime("2024-06-03T15:12:40") == datetime(2024, 6, 3, 15, 12, 40, tzinfo=UTC)


def test_object_ids_carry_their_creation_second() -> None:
    assert is_object_id("665ddd69aa5bf36518677db7")
    assert not is_object_id("665ddd69aa5bf36518677db")
    assert not is_object_id(12)
    assert object_id_time("665ddd69aa5bf36518677db7") == datetime(
        2024, 6, 3, 15, 12, 41, tzinfo=UTC
    )
    assert object_id_time("nope") is None


@pytest.mark.parametrize("name", payload_names())
def test_every_sample_parses(name: str) -> None:
    envelope = parse_envelope(payload(name))
    assert envelope.event_type == name
    assert is_object_id(envelope.event_id)
    assert envelope.timestamp.tzinfo is UTC


def test_null_event_resource_is_fine() -> None:
    envelope = parse_envelope(payload("AppointmentGroup.Created"))
    assert envelope.event_resource is None
    assert envelope.event_timestamp == "2024-06-04T19:26:12.6628240Z", "original text is kept"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"text"', "not_an_object"),
        (b"{}", "missing_event_id"),
        (b'{"event_id": ""}', "invalid_event_id"),
        (b'{"event_id": "a"}', "missing_event_type"),
        (b'{"event_id": "a", "event_type": "Guest.Created"}', "missing_event_timestamp"),
        (
            b'{"event_id": "a", "event_type": "Guest.Created", "event_timestamp": "soon"}',
            "invalid_event_timestamp",
        ),
        (b'{"event_id": "' + b"a" * 200 + b'", "event_type": "x"}', "invalid_event_id"),
    ],
)
def test_bodies_that_are_not_envelopes_are_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(body)
    assert caught.value.reason == reason


def test_integer_event_ids_are_taken_as_text() -> None:
    body = orjson.dumps(
        {"event_id": 42, "event_type": "X", "event_timestamp": "2024-01-01T00:00:00Z"}
    )
    assert parse_envelope(body).event_id == "42"


@pytest.mark.parametrize("delivery_id", ["a\u0000b", "x" * 200, "\n", 3.5, ["list"]])
def test_an_unusable_delivery_id_is_left_out_not_refused(delivery_id: object) -> None:
    """The delivery id is informational (events are deduplicated on event_id): an authentic
    event is not quarantined for it; the raw body keeps it."""
    body = orjson.dumps(
        {
            "id": delivery_id,
            "event_id": "665ddd69aa5bf36518677db7",
            "event_type": "Guest.Created",
            "event_timestamp": "2024-01-01T00:00:00Z",
            "event_schema": "v1\u0000",
        }
    )
    envelope = parse_envelope(body)
    assert envelope.delivery_id is None and envelope.event_schema is None
    assert envelope.event_id == "665ddd69aa5bf36518677db7"
