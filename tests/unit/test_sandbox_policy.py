"""Zenoti's delivery policy as data, and the webhook form's validation."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zenoti_bridge.catalog import FAMILIES, types_in_family
from zenoti_bridge.sandbox.automations import InvalidWebhook, WebhookSpec, event_names
from zenoti_bridge.sandbox.delivery import DeliveryPolicy


def spec(**fields: str) -> WebhookSpec:
    values = {
        "name": "memberships",
        "event_type": "Guest Membership",
        "event_name": "Created",
        "url": "https://bridge.example/webhooks/zenoti/acme",
    }
    return WebhookSpec(**{**values, **fields})


# -- policy ---------------------------------------------------------------------------------


def test_the_defaults_are_zenotis_documented_policy() -> None:
    policy = DeliveryPolicy()
    assert policy.timeout == 10
    assert policy.max_attempts == 6
    assert policy.schedule() == (30, 60, 120, 240, 480)
    assert policy.deactivate_after == 20
    assert policy.count == "attempts"
    assert policy.jitter == 0


def test_without_jitter_the_backoff_is_the_schedule() -> None:
    policy = DeliveryPolicy()
    rng = random.Random(1)
    assert tuple(policy.backoff(n, rng) for n in range(1, 6)) == policy.schedule()


def test_the_backoff_doubles_up_to_ten_minutes() -> None:
    assert DeliveryPolicy(retries=8).schedule() == (30, 60, 120, 240, 480, 600, 600, 600)
    assert DeliveryPolicy(retries=2000).nominal_backoff(2000) == 600


@given(failed=st.integers(1, 40), seed=st.integers(0, 2**32), jitter=st.floats(0.01, 1))
def test_jittered_delays_stay_between_thirty_seconds_and_ten_minutes(
    failed: int, seed: int, jitter: float
) -> None:
    delay = DeliveryPolicy(retries=40, jitter=jitter).backoff(failed, random.Random(seed))
    assert 30 <= delay <= 600


def test_jitter_spreads_the_delays() -> None:
    policy = DeliveryPolicy(jitter=0.5)
    rng = random.Random(3)
    delays = {policy.backoff(3, rng) for _ in range(20)}
    assert len(delays) > 10
    assert all(60 <= delay <= 180 for delay in delays)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"timeout": 0}, "timeout must be positive"),
        ({"retries": -1}, "retries must be 0 or more"),
        ({"backoff_initial": 700}, "backoff_initial <= backoff_max"),
        ({"backoff_factor": 0.5}, "backoff_factor must be at least 1"),
        ({"jitter": 1.5}, "jitter must be within [0, 1]"),
        ({"deactivate_after": 0}, "deactivate_after must be at least 1"),
        ({"count": "deliveries"}, "count must be 'attempts' or 'events'"),
    ],
)
def test_an_invalid_policy_says_what_is_wrong(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="invalid delivery policy") as raised:
        DeliveryPolicy(**fields)  # type: ignore[arg-type]
    assert message in str(raised.value)


# -- the webhook form -----------------------------------------------------------------------


def test_a_valid_spec_is_put_in_canonical_form() -> None:
    checked = spec(
        name="  memberships ",
        event_type="guest membership",
        event_name="created",
        http_verb="patch",
        subscription="5D7E6F4A-0000-4000-8000-00000000C001",
    ).validated()
    assert checked.name == "memberships"
    assert (checked.event_type, checked.event_name) == ("Guest Membership", "Created")
    assert checked.http_verb == "PATCH"
    assert checked.subscription == "5d7e6f4a-0000-4000-8000-00000000c001"
    assert checked.catalog_type == "Guest.Membership.Created"
    assert spec(subscription="Organization").validated().subscription == "organization"


def test_event_names_are_the_forms_labels_for_each_catalog_type() -> None:
    assert event_names("Class")["Booking No Show"] == "Class.Booking.NoShow"
    assert event_names("Appointment")["Feedback Created"] == "Appointment.Feedback.Created"
    assert event_names("Guest Package")["Redemption Reversal"] == "Guest.Package.RedemptionReversal"
    assert event_names("Guest Pass") == {"Redeemed": "Guestpass.Redeemed"}
    for family in FAMILIES:
        assert sorted(event_names(family).values()) == sorted(
            kind.name for kind in types_in_family(family)
        )


def test_event_names_match_with_or_without_spaces() -> None:
    checked = spec(event_type="Class", event_name="Booking NoShow").validated()
    assert checked.event_name == "Booking No Show"


def test_an_unknown_event_type_lists_the_families() -> None:
    with pytest.raises(InvalidWebhook, match="unknown event type 'Membership'") as raised:
        spec(event_type="Membership").validated()
    assert "'Guest Membership'" in str(raised.value) and "'Appointment Group'" in str(raised.value)


def test_an_event_name_of_another_family_lists_this_familys_names() -> None:
    with pytest.raises(InvalidWebhook, match="event name for 'Guest Membership'") as raised:
        spec(event_name="Booking No Show").validated()
    for name in ("'Created'", "'Freeze'", "'Unfreeze'", "'Cancelled'", "'Reinstate'"):
        assert name in str(raised.value)


@pytest.mark.parametrize("verb", ["GET", "DELETE", ""])
def test_only_post_put_and_patch_are_verbs(verb: str) -> None:
    with pytest.raises(InvalidWebhook, match="choose one of 'POST', 'PUT', 'PATCH'"):
        spec(http_verb=verb).validated()


@pytest.mark.parametrize(
    "url", ["ftp://bridge.example/x", "bridge.example/webhooks", "http://", "https:///path", ""]
)
def test_the_url_must_be_an_absolute_http_address(url: str) -> None:
    with pytest.raises(InvalidWebhook, match="must be an absolute http:// or https:// address"):
        spec(url=url).validated()


def test_name_and_subscription_are_required() -> None:
    with pytest.raises(InvalidWebhook, match="name is required"):
        spec(name="  ").validated()
    with pytest.raises(InvalidWebhook, match="subscription is required"):
        spec(subscription="").validated()


def test_webhook_is_the_only_action() -> None:
    with pytest.raises(InvalidWebhook, match="unknown action 'Email'"):
        spec(action="Email").validated()
