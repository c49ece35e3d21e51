"""Start (or join) Ray. A local Ray binds to loopback only and starts lean: no dashboard unless
asked, no usage stats, no autoscaler monitor (a single machine has nothing to scale), and, when
no worker's output needs to reach this console, no log monitor."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence

import ray

from f3ocus_ray.timing import mark

log = logging.getLogger(__name__)

# On Linux, Ray binds to the machine's network address even when given 127.0.0.1; with this
# set it binds to 127.0.0.1 (checked with ray 2.60). Token files are not needed locally.
LOCAL_RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def set_local_ray_env() -> None:
    for k, v in LOCAL_RAY_ENV.items():
        os.environ.setdefault(k, v)


@contextlib.contextmanager
def _lean_head(dashboard: bool, worker_logs: bool) -> Iterator[None]:
    """While `ray.init` starts a local head: leave out the processes a one-machine run does not
    use. `ray.init` has no switch for them (`ray start` has: --no-monitor,
    --include-log-monitor), so its Node class is swapped for a subclass that sets the same
    RayParams fields, and, without the dashboard, skips the API server, which then serves
    nothing but usage stats (checked with ray 2.60). Another Ray version without these
    internals starts as `ray.init` would."""
    from ray._private import node as ray_node

    base = getattr(ray_node, "Node", None)
    if base is None or not hasattr(base, "start_api_server"):
        yield
        return

    class LeanHead(base):
        def __init__(self, ray_params, *args, **kwargs):
            if kwargs.get("head"):
                ray_params.no_monitor = True
                if not worker_logs:
                    ray_params.update_if_absent(include_log_monitor=False)
            super().__init__(ray_params, *args, **kwargs)

        def start_api_server(self, *, include_dashboard, raise_on_failure):
            if dashboard:
                super().start_api_server(
                    include_dashboard=include_dashboard, raise_on_failure=raise_on_failure
                )

    ray_node.Node = LeanHead
    try:
        yield
    finally:
        ray_node.Node = base


def ensure_ray(
    address: str | None = None,
    num_cpus: int | None = None,
    *,
    dashboard: bool = False,
    worker_logs: bool = True,
    preload: Sequence[str] = (),
) -> bool:
    """Connect to `address`, or start a local loopback-only Ray. True if this call started it.

    `dashboard`: a local Ray's web dashboard (on 127.0.0.1:8265 or the next free port).
    `worker_logs`: the workers' output (print, logging) reaches this process's console; without
    it, it stays in the session's log files (/tmp/ray/session_latest/logs).
    `preload`: modules a local Ray's worker processes import as they start, before any work
    (Ray starts one per CPU at once): the workers' imports overlap what this process does
    next."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")  # set by `ray job submit`
    if address:
        log.info("connecting to Ray at %s", address)
        ray.init(address=address, log_to_driver=True)
        return True
    set_local_ray_env()
    log.info("starting a local Ray on 127.0.0.1")
    mark("ray_start")
    system = {"preload_python_modules": list(preload)} if preload else None
    with _lean_head(dashboard, worker_logs):
        ctx = ray.init(
            num_cpus=num_cpus,
            include_dashboard=dashboard,
            _node_ip_address="127.0.0.1",
            _system_config=system,
            log_to_driver=worker_logs,
            configure_logging=False,
        )
    mark("ray_up")
    if dashboard and ctx.dashboard_url:
        log.info("Ray dashboard: http://%s", ctx.dashboard_url)
    return True
