"""The exceptions zenoti-bridge raises, as one tree.

    ZenotiBridgeError
    ├── ConfigError              the configuration cannot be used (names the key and the fix)
    ├── EnvelopeError            an authentic body that is not a Zenoti envelope (quarantined)
    ├── StorageError
    │   └── StorageUnavailable   the store cannot take writes now (answered 503, retried by Zenoti)
    ├── NotFound                 a named thing (event, source) does not exist
    └── Ambiguous                a named thing exists in several sources: name the source

HTTP statuses for these are chosen in one place: ``intake.py`` for webhooks.
"""

from __future__ import annotations


class ZenotiBridgeError(Exception):
    """Base of every error raised on purpose by zenoti-bridge."""


class ConfigError(ZenotiBridgeError):
    """The configuration is invalid; the message names the key and what to do."""


class EnvelopeError(ZenotiBridgeError):
    """The body is not a usable Zenoti envelope; ``reason`` is a short machine-friendly code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class StorageError(ZenotiBridgeError):
    """A storage operation failed."""


class StorageUnavailable(StorageError):
    """The store cannot durably take a write right now; callers answer 503 and retry later."""


class NotFound(ZenotiBridgeError):
    """The thing asked for does not exist."""


class Ambiguous(ZenotiBridgeError):
    """The id names things in several sources; the caller must say which source."""

    def __init__(self, what: str, sources: list[str]) -> None:
        super().__init__(
            f"{what} exists in several sources ({', '.join(sorted(sources))}); name the source "
            "(--source on the command line, ?source= in the admin API)"
        )
        self.sources = sources
