"""The mirror consumer: applies stored events to the current state of every Zenoti entity.

One call of :func:`apply_events` runs inside the caller's transaction: it loads the states the
events touch, merges the events' changes (``entities.merge``: newer wins per section, in any
order), re-projects every entity whose row may change (an appointment also depends on its group)
and writes the rows. The caller marks the jobs done in the same transaction, so an event's
effect is applied exactly once, or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from .entities import (
    EntityChange,
    EntityState,
    Version,
    appointment_group_id,
    changes_for,
    integer,
    merge,
    project,
)
from .envelope import parse_envelope, timestamp_key
from .errors import EnvelopeError
from .storage.jobs import lock_entities
from .storage.schema import MIRROR_COLUMNS
from .storage.sqlconn import SqlConn

Key = tuple[str, str, str]  # (source, resource, id)


@dataclass(frozen=True, slots=True)
class MirrorEvent:
    """A stored event as the mirror needs it."""

    job_id: int
    source: str
    body: bytes


class PermanentError(Exception):
    """The event can never be applied (its body is not an envelope)."""


def _decode(event: MirrorEvent) -> tuple[Version, list[EntityChange]]:
    try:
        envelope = parse_envelope(event.body)
    except EnvelopeError as exc:
        raise PermanentError(str(exc)) from None
    version = (timestamp_key(envelope.event_timestamp), envelope.event_id)
    return version, changes_for(envelope.event_type, envelope.data)


Decoded = list[tuple[str, Version, list[EntityChange]]]


def decode_events(events: Sequence[MirrorEvent]) -> tuple[Decoded, dict[int, str]]:
    """The changes each event carries, and ``{job_id: error}`` for events that can never apply."""
    failed: dict[int, str] = {}
    decoded: Decoded = []
    for event in events:
        try:
            version, changes = _decode(event)
        except PermanentError as exc:
            failed[event.job_id] = str(exc)
            continue
        decoded.append((event.source, version, changes))
    return decoded, failed


def lock_keys(decoded: Decoded) -> set[str]:
    """Every entity the changes write, as ``resource:id``: a worker holds these while it applies.

    Most events write the entity of their ordering key, but not all (``Guest.Merged`` also
    tombstones the guest merged away), so the job's ordering key alone is not enough.
    """
    return {f"{c.resource}:{c.id}" for _, _, changes in decoded for c in changes}


def apply_events(
    sql: SqlConn, events: Sequence[MirrorEvent], now: datetime | None = None
) -> dict[int, str]:
    """Decode and apply the events; returns ``{job_id: error}`` for events that never apply."""
    decoded, failed = decode_events(events)
    apply_decoded(sql, decoded, now)
    return failed


def apply_decoded(sql: SqlConn, decoded: Decoded, now: datetime | None = None) -> None:
    """Merge decoded changes into the mirror, in the caller's transaction."""
    now = now or datetime.now(UTC)
    wanted: set[Key] = {(s, c.resource, c.id) for s, _, changes in decoded for c in changes}
    states = _load(sql, wanted)
    dirty: set[Key] = set()
    for source, version, changes in decoded:
        for change in changes:
            key = (source, change.resource, change.id)
            if merge(states.setdefault(key, EntityState()), change, version):
                dirty.add(key)

    # appointments are projected with their group; a changed group re-projects its members
    changed_groups = {(s, i) for s, r, i in dirty if r == "appointment_group"}
    members = _group_members(sql, changed_groups) - states.keys()
    # their rows are written again below, whole: hold them first, so that a worker applying an
    # appointment's own event meanwhile (it holds only that appointment) is waited for and read
    lock_entities(sql, {f"{resource}:{entity_id}" for _, resource, entity_id in members})
    needed = members | {
        (s, "appointment_group", group_id)
        for s, r, i in dirty
        if r == "appointment" and (group_id := appointment_group_id(states[(s, r, i)]))
    }
    states.update(_load(sql, needed - states.keys()))
    dirty |= {
        key
        for key, state in states.items()
        if key[1] == "appointment" and (key[0], appointment_group_id(state)) in changed_groups
    }
    _write(sql, {k: states[k] for k in dirty}, states, now)


def _load(sql: SqlConn, keys: Iterable[Key]) -> dict[Key, EntityState]:
    by_table: dict[tuple[str, str], list[str]] = {}
    for source, resource, entity_id in keys:
        by_table.setdefault((source, resource), []).append(entity_id)
    found: dict[Key, EntityState] = {}
    for (source, resource), ids in by_table.items():
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            placeholders, params = sql.in_list("id", chunk)
            rows = sql.rows(
                f"SELECT id, sections FROM mirror_{resource} "
                f"WHERE source = :source AND id{placeholders}",
                {"source": source, **params},
            )
            for entity_id, sections in rows:
                found[(source, resource, entity_id)] = EntityState.from_json(orjson.loads(sections))
    return found


def _group_members(sql: SqlConn, groups: set[tuple[str, str]]) -> set[Key]:
    members: set[Key] = set()
    by_source: dict[str, list[str]] = {}
    for source, group_id in groups:
        by_source.setdefault(source, []).append(group_id)
    for source, ids in by_source.items():
        placeholders, params = sql.in_list("g", ids)
        rows = sql.rows(
            "SELECT id FROM mirror_appointment WHERE source = :source "
            f"AND appointment_group_id{placeholders}",
            {"source": source, **params},
        )
        members |= {(source, "appointment", r[0]) for r in rows}
    return members


def _write(
    sql: SqlConn, dirty: dict[Key, EntityState], states: dict[Key, EntityState], now: datetime
) -> None:
    rows: dict[str, list[dict[str, Any]]] = {}
    items: list[dict[str, Any]] = []
    invoices: list[tuple[str, str]] = []
    history: list[dict[str, Any]] = []
    for (source, resource, entity_id), state in dirty.items():
        group_id = appointment_group_id(state) if resource == "appointment" else None
        group = states.get((source, "appointment_group", group_id)) if group_id else None
        row = project(resource, entity_id, state, group)
        version = state.version
        assert version is not None
        snapshot = state.value("snapshot")
        if snapshot is None:  # a membership's partial events, an appointment's progress events
            snapshot = state.value("latest") if resource == "membership" else state.value("served")
        row.update(
            source=source,
            id=entity_id,
            last_event_timestamp=version[0],
            last_event_id=version[1],
            updated_at=now,
            data=orjson.dumps(snapshot if snapshot is not None else {}).decode(),
            sections=orjson.dumps(state.to_json()).decode(),
        )
        rows.setdefault(resource, []).append(_localize(resource, row))
        if resource == "invoice":
            invoices.append((source, entity_id))
            items += _invoice_items(source, entity_id, snapshot)
        if resource == "membership":
            history += [
                {
                    "source": source,
                    "membership_id": entity_id,
                    "event_id": event_id,
                    "event_timestamp": stamp[0],
                    "event": entry.get("event"),
                    "status": integer(entry.get("status")),
                    "state": entry.get("state"),
                }
                for event_id, (stamp, entry) in state.history.items()
            ]
    for resource, batch in rows.items():
        columns = [
            "source",
            "id",
            "deleted",
            *MIRROR_COLUMNS[resource],
            "last_event_id",
            "last_event_timestamp",
            "updated_at",
            "data",
            "sections",
        ]
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[2:])
        sql.run_many(
            f"INSERT INTO mirror_{resource} ({', '.join(columns)}) "
            f"VALUES ({', '.join(':' + c for c in columns)}) "
            f"ON CONFLICT (source, id) DO UPDATE SET {updates}",
            _storable(batch),
        )
    by_source: dict[str, list[str]] = {}
    for source, invoice_id in invoices:
        by_source.setdefault(source, []).append(invoice_id)
    for source, ids in by_source.items():
        placeholders, params = sql.in_list("i", ids)
        sql.run(
            f"DELETE FROM mirror_invoice_items WHERE source = :source AND invoice_id{placeholders}",
            {"source": source, **params},
        )
    sql.run_many(
        "INSERT INTO mirror_invoice_items (source, invoice_id, invoice_item_id, item_id, name, "
        "type, code, quantity, final_price, therapist_id) VALUES (:source, :invoice_id, "
        ":invoice_item_id, :item_id, :name, :type, :code, :quantity, :final_price, :therapist_id) "
        "ON CONFLICT (source, invoice_id, invoice_item_id) DO NOTHING",
        _storable(items),
    )
    sql.run_many(
        "INSERT INTO mirror_membership_history (source, membership_id, event_id, event_timestamp, "
        "event, status, state) VALUES (:source, :membership_id, :event_id, :event_timestamp, "
        ":event, :status, :state) ON CONFLICT (source, membership_id, event_id) DO NOTHING",
        _storable(history),
    )


def _storable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with any NUL character in their text as U+FFFD: PostgreSQL's text cannot hold
    NUL, which JSON can carry (the raw body keeps the original)."""
    for row in rows:
        for name, value in row.items():
            if type(value) is str and "\x00" in value:
                row[name] = value.replace("\x00", "\ufffd")
    return rows


def _localize(resource: str, row: dict[str, Any]) -> dict[str, Any]:
    # wall-clock columns are stored without a zone: they are the center's local time
    for name, kind in MIRROR_COLUMNS[resource].items():
        value = row.get(name)
        if kind == "L" and isinstance(value, datetime):
            row[name] = value.replace(tzinfo=None)
    return row


def _invoice_items(source: str, invoice_id: str, snapshot: Any) -> list[dict[str, Any]]:
    from .catalog import normalize_id

    if not isinstance(snapshot, dict):
        return []
    items = []
    for item in snapshot.get("invoice_items") or []:
        if not isinstance(item, dict) or not normalize_id(item.get("invoice_item_id")):
            continue
        price = item["price"] if isinstance(item.get("price"), dict) else {}
        final = price.get("final")
        quantity = item.get("quantity")
        items.append(
            {
                "source": source,
                "invoice_id": invoice_id,
                "invoice_item_id": normalize_id(item.get("invoice_item_id")),
                "item_id": normalize_id(item.get("id")),
                "name": item.get("name") if isinstance(item.get("name"), str) else None,
                "type": integer(item.get("type")),
                "code": item.get("code") if isinstance(item.get("code"), str) else None,
                "quantity": float(quantity) if isinstance(quantity, int | float) else None,
                "final_price": float(final) if isinstance(final, int | float) else None,
                "therapist_id": normalize_id(item.get("sale_by_id")),
            }
        )
    return items
