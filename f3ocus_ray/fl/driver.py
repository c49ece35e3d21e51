"""The Driver: owns the global state, the round loop, the selection and the aggregation.

It never holds data. Each round: the strategy picks each client's units within its budget; the
global state goes once into the object store; clients are trained on the workers (longest
first, each job to the next free worker); updates are averaged per tensor over the clients that
trained it, in client order; the new global model is evaluated on every client's test split.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray

from f3ocus_ray.config import ScoringConfig, SelectionConfig
from f3ocus_ray.fl.aggregation import masked_fedavg
from f3ocus_ray.fl.seeding import derive_eval_seed, derive_score_seed, derive_seed
from f3ocus_ray.fl.strategies import make_strategy
from f3ocus_ray.fl.training import num_local_steps
from f3ocus_ray.fl.worker import ClientWorker, WorkerSpec
from f3ocus_ray.scoring.api import normalise
from f3ocus_ray.task import score_of

BITS_PER_PARAM = 32  # float32 on the wire


@dataclass(frozen=True)
class DriverSpec:
    clients: list[str]
    budgets: list[int]
    n_train: list[int]  # training samples per client: FedAvg weights and job costs
    n_test: list[int]
    task: str
    strategy: str
    seed: int
    num_workers: int
    cpus_per_worker: float
    gpus_per_worker: float
    max_worker_restarts: int
    worker: WorkerSpec
    unit_names: list[str] = field(default_factory=list)
    scoring: ScoringConfig | None = None  # when (and how) clients score their units
    selection: SelectionConfig | None = None  # the server's refinement (strategy f3ocus)
    resources_per_worker: dict[str, float] = field(default_factory=dict)  # custom Ray resources


@dataclass
class RoundResult:
    round: int
    masks: np.ndarray  # (clients, units) bool
    raw_scores: np.ndarray | None  # (clients, units) unit importance computed this round
    scores: np.ndarray | None  # the same, normalised per client (S in the paper)
    train_loss: dict[str, float]
    client_score: dict[str, float]
    client_loss: dict[str, float]
    score: float  # accuracy (vqa) or micro-F1 (multilabel) over all test samples
    loss: float
    mbit_up: float
    mbit_down: float
    trainable_params: int  # summed over clients this round (sent + trained but kept locally)
    client_gflops: dict[str, float]  # training compute per client this round
    selection_metrics: dict[str, float]  # e.g. the front's hypervolume (strategy f3ocus)
    pareto_png: bytes | None  # the Pareto front with the pick and client-only top-k
    seconds_score: float  # wall time of the round's scoring (0 when not due)
    seconds_select: float
    seconds_train: float
    seconds_eval: float
    seconds: float

    def metrics(self) -> dict[str, float]:
        """Flat per-round metrics for tracking."""
        out = {
            "score": self.score,
            "loss": self.loss,
            "train_loss": float(np.mean(list(self.train_loss.values()))),
            "mbit_up": self.mbit_up,
            "mbit_down": self.mbit_down,
            "trainable_params": float(self.trainable_params),
            "gflops_train": float(sum(self.client_gflops.values())),
            "gflops_per_client": float(np.mean(list(self.client_gflops.values()))),
            # variance of the layer-usage histogram n_l = Σ_i M_il (lower = better spread)
            "usage_variance": float(self.masks.sum(0).var()),
            **{f"selection/{k}": v for k, v in self.selection_metrics.items()},
            "seconds_score": self.seconds_score,
            "seconds_select": self.seconds_select,
            "seconds_train": self.seconds_train,
            "seconds_eval": self.seconds_eval,
            "seconds": self.seconds,
        }
        for c, v in self.client_score.items():
            out[f"client/{c}/score"] = v
            out[f"client/{c}/loss"] = self.client_loss[c]
        return out


def _selection_metrics(masks: np.ndarray, scores: np.ndarray | None, chosen: Any) -> dict:
    out: dict[str, float] = {}
    if scores is not None:
        out["importance"] = float((masks * scores).sum())
    if chosen is not None:
        out.update(
            hypervolume=float(chosen.hypervolume),
            front_size=float(len(chosen.front_masks)),
            evaluations=float(chosen.n_evals),
            seconds=float(chosen.seconds),
            topk_importance=float(chosen.topk_importance),
            topk_usage_variance=float(chosen.topk_variance),
        )
    return out


def _pareto_png(chosen: Any, r: int) -> bytes | None:
    if chosen is None:
        return None
    from f3ocus_ray.selection import pareto_plot_png

    return pareto_plot_png(chosen, title=f"round {r + 1}: Pareto front, pick and top-k")


class FederatedDriver:
    def __init__(self, spec: DriverSpec):
        self.spec = spec
        worker_cls = ray.remote(ClientWorker).options(
            num_cpus=spec.cpus_per_worker,
            num_gpus=spec.gpus_per_worker,
            resources=dict(spec.resources_per_worker) or None,
            # a killed worker is restarted and its in-flight client redone (same seed, same
            # global state), so the round's result does not change
            max_restarts=spec.max_worker_restarts,
            max_task_retries=spec.max_worker_restarts,
        )
        self.workers = [worker_cls.remote(spec.worker) for _ in range(spec.num_workers)]
        self.state: dict[str, np.ndarray] = ray.get(self.workers[0].initial_state.remote())
        self.version = dict.fromkeys(self.state, 0)
        self.round = 0
        self.strategy = make_strategy(spec.strategy, spec.seed, spec.selection)
        self.budgets = np.asarray(spec.budgets, dtype=np.int64)
        self.raw_scores: np.ndarray | None = None  # the latest scores (kept between rounds)
        # each client's own never-sent state (FedDAT's client-specific adapters), kept here in
        # place of the clients' disks: whichever worker serves a client gets it with the job
        self.private: dict[str, dict[str, np.ndarray]] = {}

    # -- checkpointing (plain data only) -------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "state": self.state,
            "version": self.version,
            "raw_scores": self.raw_scores,
            "private": self.private,
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.round, self.state, self.version = d["round"], dict(d["state"]), dict(d["version"])
        self.raw_scores = d.get("raw_scores")
        self.private = dict(d.get("private") or {})

    def worker_nodes(self) -> list[str]:
        """The Ray node id of each worker (where its placement-group bundle put it)."""
        return ray.get([w.node_id.remote() for w in self.workers])

    def worker_pids(self) -> list[int]:
        return ray.get([w.pid.remote() for w in self.workers])

    def worker_peak_rss_mb(self) -> list[float]:
        return ray.get([w.peak_rss_mb.remote() for w in self.workers])

    # -- the round -----------------------------------------------------------------------
    def _dispatch(self, jobs: list[tuple[float, Callable[[Any], Any]]]) -> list[Any]:
        """Run jobs (cost, submit(worker) -> ref), longest first, each to the next free worker.

        Results come back in job order whatever finishes first.
        """
        queue = deque(sorted(range(len(jobs)), key=lambda j: -jobs[j][0]))
        idle = list(self.workers)
        inflight: dict[Any, tuple[int, Any]] = {}
        results: list[Any] = [None] * len(jobs)
        while queue or inflight:
            while queue and idle:
                j, w = queue.popleft(), idle.pop(0)
                inflight[jobs[j][1](w)] = (j, w)
            done, _ = ray.wait(list(inflight), num_returns=1)
            for ref in done:
                j, w = inflight.pop(ref)
                results[j] = ray.get(ref)
                idle.append(w)
        return results

    def _score(self, r: int, state_ref: Any, versions: dict[str, int]) -> np.ndarray:
        """Every client's per-unit importance under the current global model: (N, L) raw."""
        jobs = []
        for i, client in enumerate(self.spec.clients):
            seed = derive_score_seed(self.spec.seed, r, i)

            def submit(w, client=client, seed=seed):
                return w.score.remote(client, seed, state_ref, versions)

            jobs.append((1.0, submit))
        return np.stack([raw for raw, _ in self._dispatch(jobs)])

    def run_round(self) -> RoundResult:
        t0 = time.perf_counter()
        spec, r = self.spec, self.round
        state_ref = ray.put(self.state)
        versions = dict(self.version)
        fresh = spec.scoring is not None and spec.scoring.due(r)
        if fresh:
            self.raw_scores = self._score(r, state_ref, versions)
        t_score = time.perf_counter()
        scores = None
        if self.raw_scores is not None:
            scores = np.stack([normalise(row) for row in self.raw_scores])
        masks = self.strategy.select(r, self.budgets, len(spec.unit_names), scores)
        chosen = getattr(self.strategy, "last_result", None)
        t_sel = time.perf_counter()

        tr = spec.worker.training
        jobs = []
        for i, client in enumerate(spec.clients):
            cost = num_local_steps(spec.n_train[i], tr.batch_size, tr.local_epochs, tr.local_steps)
            seed = derive_seed(spec.seed, r, i)

            def submit(w, client=client, seed=seed, mask=masks[i]):
                own = self.private.get(client)
                return w.train.remote(client, seed, mask, state_ref, versions, own)

            jobs.append((cost * min(spec.n_train[i], tr.batch_size), submit))
        updates = self._dispatch(jobs)
        t_train = time.perf_counter()

        self.state = masked_fedavg(self.state, [(u.tensors, u.n_samples) for u in updates])
        for client, u in zip(spec.clients, updates, strict=True):
            if u.private:
                self.private[client] = u.private
        for u in updates:
            for name in u.tensors:
                self.version[name] = r + 1
        self.round = r + 1

        state_ref = ray.put(self.state)
        versions = dict(self.version)
        eval_jobs = []
        for i, client in enumerate(spec.clients):
            seed = derive_eval_seed(spec.seed, r, i)

            def submit_eval(w, client=client, seed=seed):
                own = self.private.get(client)
                return w.evaluate.remote(client, seed, state_ref, versions, own)

            eval_jobs.append((spec.n_test[i], submit_eval))
        evals = self._dispatch(eval_jobs)
        t_eval = time.perf_counter()

        sizes = {n: a.size for n, a in self.state.items()}
        sent = sum(sizes[n] for u in updates for n in u.tensors)
        total = {k: sum(e[k] for e in evals) for k in evals[0]}
        return RoundResult(
            round=self.round,
            masks=masks,
            raw_scores=self.raw_scores if fresh else None,
            scores=scores if fresh else None,
            selection_metrics=_selection_metrics(masks, scores, chosen),
            pareto_png=_pareto_png(chosen, r),
            train_loss={c: u.loss for c, u in zip(spec.clients, updates, strict=True)},
            client_score={
                c: score_of(e, spec.task) for c, e in zip(spec.clients, evals, strict=True)
            },
            client_loss={
                c: e["loss_sum"] / e["n"] for c, e in zip(spec.clients, evals, strict=True)
            },
            score=score_of(total, spec.task),
            loss=total["loss_sum"] / total["n"],
            # the selected tensors go down to each client and come back up: same count each way
            # (a client's private tensors, FedDAT's own adapters, never travel)
            mbit_up=sent * BITS_PER_PARAM / 1e6,
            mbit_down=sent * BITS_PER_PARAM / 1e6,
            trainable_params=sent + sum(u.private_params for u in updates),
            client_gflops={c: u.gflops for c, u in zip(spec.clients, updates, strict=True)},
            seconds_score=t_score - t0,
            seconds_select=t_sel - t_score,
            seconds_train=t_train - t_sel,
            seconds_eval=t_eval - t_train,
            seconds=t_eval - t0,
        )


# The driver actor: a few bytes of CPU work per round, so it reserves no CPU of its own
Driver = ray.remote(num_cpus=0)(FederatedDriver)
