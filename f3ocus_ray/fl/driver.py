"""The Driver: a `Federation` on a pool of Ray ClientWorker actors.

`f3ocus run` on a local Ray and a Tune trial host it in their own process (a trial's workers
land in its placement group); `f3ocus run` on a cluster hosts it as an actor (`Driver`), next
to its workers.
"""

from __future__ import annotations

import ray

from f3ocus_ray.fl.executors import RayExecutor
from f3ocus_ray.fl.round import DriverSpec, Federation
from f3ocus_ray.timing import mark


class FederatedDriver(Federation):
    def __init__(self, spec: DriverSpec, pool: RayExecutor | None = None):
        """`pool`: workers already started for `spec` (they start while the caller does other
        work); by default they are started here."""
        mark("driver_init")
        self.pool = pool or RayExecutor(spec.worker, spec.pool)
        super().__init__(spec, self.pool)
        mark("driver_ready")  # the workers are up and the initial state is here

    @property
    def workers(self) -> list:
        return self.pool.workers

    def worker_nodes(self) -> list[str]:
        """The Ray node id of each worker (where its placement-group bundle put it)."""
        return self.pool.call_all("node_id")

    def worker_pids(self) -> list[int]:
        return self.pool.call_all("pid")

    def worker_peak_rss_mb(self) -> list[float]:
        return self.pool.call_all("peak_rss_mb")

    def close(self) -> None:
        self.pool.close()


# The driver actor: a few bytes of CPU work per round, so it reserves no CPU of its own
Driver = ray.remote(num_cpus=0)(FederatedDriver)
