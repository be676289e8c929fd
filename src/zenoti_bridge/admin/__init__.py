"""The admin API under ``/api/v1`` (and, later, the web UI under ``/ui``)."""

from __future__ import annotations

from .api import build_admin_api

__all__ = ["build_admin_api"]
