"""Where a round's client work runs: the round (fl/round.py) hands each executor a list of
jobs, a worker method with its arguments and a cost, and gets the results back in job order.

- `RayExecutor`: a pool of `ClientWorker` actors on a Ray cluster; longest job first, each to
  the next free worker; a killed worker is restarted and its job redone.
- `InProcessExecutor`: one `ClientWorker` in this process, jobs in order (tests, benchmarks,
  the plain-loop baseline).

A ClientWorker's results depend only on its arguments (it syncs to the global state and seeds
every draw), so both executors give the same numbers for the same run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from f3ocus_ray.fl.worker import ClientWorker, WorkerSpec


@dataclass(frozen=True)
class Job:
    method: str  # a ClientWorker method: "train", "evaluate" or "score"
    args: tuple[Any, ...]
    cost: float = 1.0  # for longest-first dispatch


class Executor(Protocol):
    def share(self, obj: Any) -> Any:
        """A handle to pass to many jobs (the object store's reference, or the object)."""

    def initial_state(self) -> dict[str, np.ndarray]: ...

    def run(self, jobs: Sequence[Job]) -> list[Any]:
        """Run every job; results in job order."""

    def close(self) -> None: ...


class InProcessExecutor:
    """The worker sets this process's torch threads (`worker.torch_threads`); `close` puts
    back the count it found."""

    def __init__(self, worker: WorkerSpec):
        import torch

        self._threads = torch.get_num_threads()
        self.worker = ClientWorker(worker)

    def share(self, obj: Any) -> Any:
        return obj

    def initial_state(self) -> dict[str, np.ndarray]:
        return self.worker.initial_state()

    def run(self, jobs: Sequence[Job]) -> list[Any]:
        return [getattr(self.worker, job.method)(*job.args) for job in jobs]

    def close(self) -> None:
        import torch

        torch.set_num_threads(self._threads)


@dataclass(frozen=True)
class RayPool:
    """How many ClientWorker actors, and what each reserves."""

    num_workers: int
    cpus_per_worker: float
    gpus_per_worker: float
    max_worker_restarts: int
    resources_per_worker: dict[str, float]


class RayExecutor:
    """`worker_cls`: ClientWorker or a subclass (tests use one that pauses at a known point)."""

    def __init__(
        self, worker: WorkerSpec, pool: RayPool, worker_cls: type[ClientWorker] = ClientWorker
    ):
        import ray

        self._ray = ray
        actor_cls = ray.remote(worker_cls).options(
            num_cpus=pool.cpus_per_worker,
            num_gpus=pool.gpus_per_worker,
            resources=dict(pool.resources_per_worker) or None,
            # a killed worker is restarted and its in-flight client redone (same seed, same
            # global state), so the round's result does not change
            max_restarts=pool.max_worker_restarts,
            max_task_retries=pool.max_worker_restarts,
        )
        self.workers = [actor_cls.remote(worker) for _ in range(pool.num_workers)]

    def share(self, obj: Any) -> Any:
        return self._ray.put(obj)

    def initial_state(self) -> dict[str, np.ndarray]:
        return self._ray.get(self.workers[0].initial_state.remote())

    def run(self, jobs: Sequence[Job]) -> list[Any]:
        """Longest first, each to the next free worker."""
        ray = self._ray
        queue = deque(sorted(range(len(jobs)), key=lambda j: -jobs[j].cost))
        idle = list(self.workers)
        inflight: dict[Any, tuple[int, Any]] = {}
        results: list[Any] = [None] * len(jobs)
        while queue or inflight:
            while queue and idle:
                j, w = queue.popleft(), idle.pop(0)
                inflight[getattr(w, jobs[j].method).remote(*jobs[j].args)] = (j, w)
            done, _ = ray.wait(list(inflight), num_returns=1)
            for ref in done:
                j, w = inflight.pop(ref)
                results[j] = ray.get(ref)
                idle.append(w)
        return results

    def call_all(self, method: str) -> list[Any]:
        """One call of `method` on every worker (pids, node ids, peak memory)."""
        return self._ray.get([getattr(w, method).remote() for w in self.workers])

    def close(self) -> None:
        for w in self.workers:
            self._ray.kill(w)
