"""The Zenoti-side steps for connecting one source (zenoti/README.md §3), as plain text."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, urlsplit

from .catalog import FAMILIES, types_in_family
from .config import Settings, SourceConfig, connectable_host


def webhook_url(base_url: str, source: str, config: SourceConfig) -> str:
    """The exact URL to paste into Zenoti's webhook form for this source."""
    url = f"{base_url.rstrip('/')}/webhooks/zenoti/{source}"
    if config.url_token:
        url += f"?token={quote(config.url_token, safe='')}"
    return url


def base_url(
    settings: Settings,
    override: str | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
) -> str:
    """Where Zenoti reaches the bridge: the override, server.public_url, or the bound address."""
    if override:
        return override
    if settings.server.public_url:
        return settings.server.public_url
    host = connectable_host(host or settings.server.host)
    return f"http://{host}:{settings.server.port if port is None else port}"


def event_name(type_name: str, family: str) -> str:
    """The "Event Name" Zenoti's webhook form lists for a catalog type of one family.

    The form lists the last segment(s) of the type as words: the catalog's spelling rule
    removes the spaces inside a segment ("Booking No Show" is ``Class.Booking.NoShow``).
    """
    parts = type_name.split(".")
    if family in ("Class", "Appointment") and len(parts) > 2:
        label = " ".join(parts[1:])
    else:
        label = parts[-1]
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", label)


def reachable_from_zenoti(url: str) -> bool:
    """False for a loopback, private or link-local address, which Zenoti's servers cannot call."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True  # a public name, as far as can be told here
    return address.is_global


def render(settings: Settings, source: str, override_base: str | None = None) -> str:
    config = settings.sources[source]
    base = base_url(settings, override_base)
    url = webhook_url(base, source, config)
    lines = [f"Connecting Zenoti to zenoti-bridge, source {source!r}", ""]
    if not reachable_from_zenoti(url):
        lines += [
            f"Note: {base} is not reachable from the internet, and "
            "Zenoti calls from its own servers.",
            "Pass the public address the bridge is reached at: --base-url https://your.host "
            "(or set server.public_url).",
            "",
        ]
    lines += [
        "1. In Zenoti open Configuration > Integrations > Webhooks",
        "   (older screens: Admin > Setup > Automation > + Add New Automation).",
        "2. Add one webhook per event below. For each one set:",
        f"     Name          zenoti-bridge {source} <Event Type> <Event Name>",
        "     Description   Forwards events to zenoti-bridge",
        "     Subscription  your organization (or one center, if only that center should send)",
        "     Action        Webhook",
        "     HTTP verb     POST (PUT and PATCH are accepted too)",
        f"     URL           {url}",
        "",
    ]
    for family in FAMILIES:
        lines.append(f"   Event Type {family!r}:")
        for kind in types_in_family(family):
            note = "" if kind.confidence in ("doc", "obs") else f"  [{kind.confidence}]"
            lines.append(
                f"     - Event Name {event_name(kind.name, family)!r:<26} ({kind.name}){note}"
            )
        lines.append(f"     URL: {url}")
        lines.append("")
    if config.signature != "off":
        lines += [
            "3. Signing: Zenoti signs each delivery with the webhook's secret in the",
            "   'zenoti-webhook-signature' header. Put that secret into",
            f"   sources.{source}.webhook_secrets (several may be listed while you rotate).",
            f"   Signature mode is {config.signature!r}"
            + (
                ": unsigned or wrongly signed deliveries get 401."
                if config.signature == "enforce"
                else ": failures are stored and flagged, never refused."
            ),
        ]
    else:
        lines += [
            "3. Signatures are not checked for this source"
            + (
                " (the URL token authenticates it)."
                if config.url_token
                else ": anyone who knows the URL can post events. Set a url_token or secrets."
            ),
        ]
    lines += [
        '4. Press Zenoti\'s test button: the bridge answers {"status":"ping"} and stores nothing.',
        "5. If Zenoti ever deactivates the webhook (20 failed deliveries in a row): check that",
        "   the URL answers (GET /readyz), read the failure log in Zenoti, fix the cause, then",
        "   reactivate it from the Inactive tab. Events sent during the outage are not resent.",
        "",
        "[inf] marks event types inferred from naming rules; listed ones have no known sample.",
    ]
    return "\n".join(lines)
