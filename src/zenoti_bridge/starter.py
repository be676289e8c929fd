"""The starter configuration written on a fresh clone."""

from __future__ import annotations

import secrets
from pathlib import Path

from .config import DEFAULT_DATABASE_URL

TEMPLATE = """\
# zenoti-bridge configuration. Environment variables override any key:
# ZB_DATABASE__URL, ZB_SERVER__PORT, ZB_SOURCES__DEMO__SIGNATURE, ...
# This file holds secrets: keep it out of version control.

[database]
url = "{database_url}"        # or "postgresql://user@host:5432/db"

[server]
host = "127.0.0.1"
port = {port}

[admin]
tokens = ["{admin_token}"]

# One [sources.NAME] per Zenoti organization; its webhook URL is /webhooks/zenoti/NAME
[sources.demo]
webhook_secrets = ["{secret}"]
signature = "enforce"          # enforce | log | off
# url_token = "..."            # alternative to signatures: ?token=...
# max_body_bytes = 4194304
"""


def write_starter(path: Path, *, port: int = 8080) -> str:
    """Write a starter config with a ``demo`` source; returns the generated webhook secret."""
    secret = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        TEMPLATE.format(
            database_url=DEFAULT_DATABASE_URL,
            port=port,
            admin_token=secrets.token_urlsafe(32),
            secret=secret,
        ),
        encoding="utf-8",
    )
    path.chmod(0o600)
    return secret
