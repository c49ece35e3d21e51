"""Start (or join) Ray. A local Ray binds to loopback only."""

from __future__ import annotations

import logging
import os

import ray

from f3ocus_ray.timing import mark

log = logging.getLogger(__name__)

# On Linux, Ray binds to the machine's network address even when given 127.0.0.1; with this
# set it binds to 127.0.0.1 (checked with ray 2.60). Token files are not needed locally.
LOCAL_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


def set_local_ray_env() -> None:
    for k, v in LOCAL_RAY_ENV.items():
        os.environ.setdefault(k, v)


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to `address`, or start a local loopback-only Ray. True if this call started it."""
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
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=True,
        configure_logging=False,
    )
    mark("ray_up")
    return True
