"""Where a round's client work runs: the round (fl/round.py) hands each executor a list of
jobs, a worker method with its arguments and a cost, and gets the results back in job order.

- `RayExecutor`: a pool of `ClientWorker` actors on a Ray cluster; longest job first, each to
  the next free worker, preferring a worker that served the job's client before (client
  affinity: its data is likely still decoded there); a killed worker is restarted and its job
  redone.
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
    client: str | None = None  # whose job (client affinity); None: any worker


# a free worker may take a job of a client it served before instead of the longest job left
# when that job is at least (1 - AFFINITY_SLACK) as long: longest-first, within 10%
AFFINITY_SLACK = 0.1


class Affinity:
    """Which worker last served each client (one entry per client, however many rounds), and
    the count of dispatches that went back to that worker (`hits`)."""

    def __init__(self) -> None:
        self.holder: dict[str, int] = {}
        self.hits = 0

    def note(self, client: str | None, worker: int) -> None:
        if client is None:
            return
        if self.holder.get(client) == worker:
            self.hits += 1
        self.holder[client] = worker


class LongestFirst:
    """One batch of jobs in dispatch order: `take(idle)` gives the next (job, worker).

    The longest job left goes to a free worker, unless a free worker served the client of a
    job about as long (within AFFINITY_SLACK of the longest): then that worker takes that job.
    Nothing waits for a busy worker, so the round stays as balanced as plain longest-first.
    Each step costs O(free workers), whatever the number of jobs.
    """

    def __init__(self, jobs: Sequence[Job], affinity: Affinity | None):
        self.jobs, self.affinity = jobs, affinity
        order = sorted(range(len(jobs)), key=lambda j: -jobs[j].cost)
        self.queue = deque(order)
        self.taken = [False] * len(jobs)
        self.left = len(jobs)
        self.own: dict[int, deque[int]] = {}  # worker -> its clients' jobs, longest first
        if affinity is not None:
            for j in order:
                w = affinity.holder.get(jobs[j].client)  # type: ignore[arg-type]
                if w is not None:
                    self.own.setdefault(w, deque()).append(j)

    def _first(self, jobs: deque[int] | None) -> int | None:
        while jobs and self.taken[jobs[0]]:
            jobs.popleft()
        return jobs[0] if jobs else None

    def take(self, idle: Sequence[int]) -> tuple[int, int]:
        """The next job and the worker (one of `idle`) to run it."""
        head = self._first(self.queue)
        if head is None or not idle:
            raise ValueError("no job left or no free worker")
        floor = (1 - AFFINITY_SLACK) * self.jobs[head].cost
        job, worker = head, idle[0]
        for w in idle:
            own = self._first(self.own.get(w))
            if own is not None and self.jobs[own].cost >= floor:
                job, worker = own, w
                break
        self.taken[job] = True
        self.left -= 1
        if self.affinity is not None:
            self.affinity.note(self.jobs[job].client, worker)
        return job, worker


class Executor(Protocol):
    def share(self, obj: Any) -> Any:
        """A handle to pass to many jobs (the object store's reference, or the object)."""

    def initial_state(self) -> dict[str, np.ndarray]: ...

    def run(self, jobs: Sequence[Job]) -> list[Any]:
        """Run every job; results in job order."""

    def affinity_hits(self) -> int:
        """Jobs so far that ran on a worker that had served their client before."""

    def close(self) -> None: ...


class InProcessExecutor:
    """The worker sets this process's torch threads (`worker.torch_threads`); `close` puts
    back the count it found."""

    def __init__(self, worker: WorkerSpec):
        import torch

        self._threads = torch.get_num_threads()
        self.worker = ClientWorker(worker)
        self._affinity = Affinity()

    def share(self, obj: Any) -> Any:
        return obj

    def initial_state(self) -> dict[str, np.ndarray]:
        return self.worker.initial_state()

    def run(self, jobs: Sequence[Job]) -> list[Any]:
        for job in jobs:
            self._affinity.note(job.client, 0)
        return [getattr(self.worker, job.method)(*job.args) for job in jobs]

    def affinity_hits(self) -> int:
        return self._affinity.hits

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
    """`worker_cls`: ClientWorker or a subclass (tests use one that pauses at a known point);
    `affinity`: False dispatches by cost alone (the results are the same either way)."""

    def __init__(
        self,
        worker: WorkerSpec,
        pool: RayPool,
        worker_cls: type[ClientWorker] = ClientWorker,
        affinity: bool = True,
    ):
        import ray

        self._ray = ray
        self._affinity = Affinity() if affinity else None
        self.last_workers: list[int] = []  # the worker index of each job of the latest run
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
        """Longest first, each to the next free worker (with client affinity, `LongestFirst`)."""
        ray = self._ray
        plan = LongestFirst(jobs, self._affinity)
        idle = list(range(len(self.workers)))
        inflight: dict[Any, tuple[int, int]] = {}
        results: list[Any] = [None] * len(jobs)
        self.last_workers = [-1] * len(jobs)
        while plan.left or inflight:
            while plan.left and idle:
                j, w = plan.take(idle)
                idle.remove(w)
                self.last_workers[j] = w
                ref = getattr(self.workers[w], jobs[j].method).remote(*jobs[j].args)
                inflight[ref] = (j, w)
            done, _ = ray.wait(list(inflight), num_returns=1)
            for ref in done:
                j, w = inflight.pop(ref)
                results[j] = ray.get(ref)
                idle.append(w)
        return results

    def affinity_hits(self) -> int:
        return self._affinity.hits if self._affinity is not None else 0

    def call_all(self, method: str) -> list[Any]:
        """One call of `method` on every worker (pids, node ids, peak memory)."""
        return self._ray.get([getattr(w, method).remote() for w in self.workers])

    def close(self) -> None:
        for w in self.workers:
            self._ray.kill(w)
