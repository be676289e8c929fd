"""The baseline of ``bench/pipeline.py``: ``zenoti-bridge worker`` whose batches apply nothing.

    python bench/noop_worker.py worker --config CONFIG [--concurrency 2] [--log-level warning]

It runs the shipped worker command with one difference: a batch claims its jobs, locks their
ordering keys and finishes them (``claim_in_transaction``, ``lock_entities``, ``finish``: the
job operations of ``storage/jobs.py``) without reading or writing the mirror. Everything around
the batch is the real thing: the same store and connections, the claim (``SKIP LOCKED`` on
PostgreSQL, the writer on SQLite), the jobs marked succeeded and the events processed, the
commit, the batch size, the concurrency, the idle waits. So the time it needs for a queue of
jobs is the queue's own cost, and the mirror's share is what the real worker needs on top.
"""

from __future__ import annotations

import random
import sys
from datetime import datetime

from zenoti_bridge import cli, worker
from zenoti_bridge.retry import RetryPolicy
from zenoti_bridge.storage.jobs import claim_in_transaction, finish, lock_entities
from zenoti_bridge.storage.sqlconn import SqlConn


def claim_and_finish(
    sql: SqlConn,
    limit: int,
    now: datetime,
    policy: RetryPolicy = worker.MIRROR_POLICY,
    rng: random.Random | None = None,
) -> tuple[int, int]:
    """A batch of the no-op consumer, in the caller's transaction: (jobs done, jobs dead)."""
    jobs = claim_in_transaction(sql, worker.MIRROR, limit, now)
    lock_entities(sql, {job.ordering_key or f"job:{job.job_id}" for job in jobs})
    finish(sql, [job.job_id for job in jobs], {}, now)
    return len(jobs), 0


def main() -> None:
    worker.run_mirror_batch = claim_and_finish  # the one difference from `zenoti-bridge worker`
    sys.argv = ["zenoti-bridge", *sys.argv[1:]]
    cli.main()


if __name__ == "__main__":
    main()
