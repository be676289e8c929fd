"""zenoti-bridge: a durable, idempotent bridge for Zenoti webhooks."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
