"""One small seam over the two DB-API drivers, so synchronous job code is written once.

SQL is written with ``:name`` placeholders; for psycopg they become ``%(name)s``. Times are
passed as datetimes: aware ones are UTC instants, naive ones are local wall times; SQLite gets
them as text in SQLAlchemy's format.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import psycopg

from .sqlite import sqlite_time

Dialect = Literal["sqlite", "postgresql"]
_NAMED = re.compile(r"(?<![:\w]):(\w+)")


class SqlConn:
    """A synchronous connection of either backend, in a transaction the caller controls."""

    def __init__(
        self, conn: sqlite3.Connection | psycopg.Connection[Any], dialect: Dialect
    ) -> None:
        self.conn = conn
        self.dialect = dialect
        self._cache: dict[str, str] = {}

    def _sql(self, text: str) -> str:
        if self.dialect == "sqlite":
            return text
        converted = self._cache.get(text)
        if converted is None:
            converted = _NAMED.sub(r"%(\1)s", text.replace("%", "%%"))
            self._cache[text] = converted
        return converted

    def _params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if self.dialect == "postgresql":
            return dict(params)
        return {k: _sqlite_value(v) for k, v in params.items()}

    def rows(self, text: str, params: Mapping[str, Any] | None = None) -> list[Sequence[Any]]:
        cursor = self.conn.execute(self._sql(text), self._params(params or {}))
        return list(cursor.fetchall())

    def run(self, text: str, params: Mapping[str, Any] | None = None) -> int:
        cursor = self.conn.execute(self._sql(text), self._params(params or {}))
        return int(cursor.rowcount)

    def run_many(self, text: str, params: Iterable[Mapping[str, Any]]) -> None:
        batch = [self._params(p) for p in params]
        if not batch:
            return
        if isinstance(self.conn, sqlite3.Connection):
            self.conn.executemany(text, batch)
        else:
            with self.conn.cursor() as cursor:
                cursor.executemany(self._sql(text), batch)

    def in_list(self, name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
        """A membership test to put after a column: `` IN (...)`` or `` = ANY(...)``.

        On PostgreSQL the values travel as one array parameter, so the statement's text (and
        its plan) is the same whatever the number of values.
        """
        if self.dialect == "postgresql":
            return f" = ANY(:{name})", {name: list(values)}
        names = [f"{name}_{i}" for i in range(len(values))]
        return " IN (" + ", ".join(f":{n}" for n in names) + ")", dict(
            zip(names, values, strict=True)
        )


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return f"{value:%Y-%m-%d %H:%M:%S}.{value.microsecond:06d}"
        return sqlite_time(value)
    return value
