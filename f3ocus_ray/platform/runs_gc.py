"""`f3ocus runs gc`: mark orphaned runs. A run whose process was killed (kill -9, a lost node)
stays RUNNING in MLflow forever; this finds such runs and ends them as KILLED.

A RUNNING run is an orphan when its owner process (host, pid and start time, tagged by
RunTracker) is gone from this host, or, with `stale_after`, when its last heartbeat (the time
of its last logged metrics) is older than that many seconds (for runs of other hosts).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

import psutil

from f3ocus_ray.platform.tracking import (
    HEARTBEAT_TAG,
    HOST_TAG,
    PID_START_TAG,
    PID_TAG,
    tracking_client,
)


@dataclass(frozen=True)
class Orphan:
    run_id: str
    run_name: str
    experiment: str
    reason: str


def _alive(pid: int, start: float) -> bool:
    try:
        return abs(psutil.Process(pid).create_time() - start) < 1.0  # not a reused pid
    except psutil.Error:
        return False


def _orphan_reason(tags: dict[str, str], stale_after: float | None, now: float) -> str | None:
    if tags.get(HOST_TAG) == socket.gethostname() and PID_TAG in tags:
        if not _alive(int(tags[PID_TAG]), float(tags.get(PID_START_TAG, 0))):
            return f"its process {tags[PID_TAG]} on this host is gone"
        return None
    beat = float(tags.get(HEARTBEAT_TAG, 0))
    if stale_after is not None and now - beat > stale_after:
        return f"no heartbeat for {now - beat:.0f} s"
    return None


def collect_orphans(
    uri: str, experiment: str | None = None, stale_after: float | None = None, dry_run=False
) -> list[Orphan]:
    """End every orphaned RUNNING run as KILLED (unless `dry_run`); returns them."""
    client = tracking_client(uri)
    exps = [client.get_experiment_by_name(experiment)] if experiment else None
    exps = [e for e in exps if e is not None] if exps else client.search_experiments()
    found, now = [], time.time()
    for exp in exps:
        for run in client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'"):
            reason = _orphan_reason(run.data.tags, stale_after, now)
            if reason is None:
                continue
            found.append(Orphan(run.info.run_id, run.info.run_name, exp.name, reason))
            if not dry_run:
                client.set_tag(run.info.run_id, "f3ocus.gc", reason)
                client.set_terminated(run.info.run_id, "KILLED")
    return found
