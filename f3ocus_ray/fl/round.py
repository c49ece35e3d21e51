"""The federated round, apart from where it runs (pfl-research's algorithm/backend split).

`Federation` holds the global state and runs rounds on an `Executor` (fl/executors.py). It never
holds data. Each round: the clients score their units when the strategy says so; the strategy
picks each client's units within its budget; the global state goes once to the executor; the
clients train (longest first on a pool); the strategy aggregates their updates in client
order; the new global model is evaluated on every client's test split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from f3ocus_ray.config import ScoringConfig, SelectionConfig
from f3ocus_ray.fl.executors import Executor, Job, RayPool
from f3ocus_ray.fl.training import num_local_steps
from f3ocus_ray.fl.worker import WorkerSpec
from f3ocus_ray.scoring.api import normalise
from f3ocus_ray.seeding import derive_eval_seed, derive_score_seed, derive_seed
from f3ocus_ray.strategies import Strategy, make_strategy
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
    worker: WorkerSpec
    pool: RayPool  # the ClientWorker actors (Ray executor only)
    unit_names: list[str] = field(default_factory=list)
    scoring: ScoringConfig | None = None  # when (and how) clients score; None = never
    selection: SelectionConfig | None = None  # the server's refinement (strategy f3ocus)


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


def strategy_of(spec: DriverSpec) -> Strategy:
    sc = spec.scoring
    return make_strategy(
        spec.strategy,
        spec.seed,
        spec.selection,
        schedule=sc.schedule if sc is not None else "off",
        every_k=sc.every_k if sc is not None else 1,
    )


class Federation:
    """The global state and the round loop, on any executor."""

    def __init__(self, spec: DriverSpec, executor: Executor, strategy: Strategy | None = None):
        self.spec = spec
        self.executor = executor
        self.strategy = strategy or strategy_of(spec)
        self.state: dict[str, np.ndarray] = executor.initial_state()
        self.version = dict.fromkeys(self.state, 0)
        self.round = 0
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

    # -- the round -----------------------------------------------------------------------
    def _score(self, r: int, state: Any, versions: dict[str, int]) -> np.ndarray:
        """Every client's per-unit importance under the current global model: (N, L) raw."""
        jobs = [
            Job("score", (client, derive_score_seed(self.spec.seed, r, i), state, versions))
            for i, client in enumerate(self.spec.clients)
        ]
        return np.stack([raw for raw, _ in self.executor.run(jobs)])

    def run_round(self) -> RoundResult:
        t0 = time.perf_counter()
        spec, r, run = self.spec, self.round, self.executor.run
        state = self.executor.share(self.state)
        versions = dict(self.version)
        fresh = self.strategy.scores_due(r)
        if fresh:
            self.raw_scores = self._score(r, state, versions)
        t_score = time.perf_counter()
        scores = None
        if self.raw_scores is not None:
            scores = np.stack([normalise(row) for row in self.raw_scores])
        selection = self.strategy.select(r, self.budgets, len(spec.unit_names), scores)
        masks = selection.masks
        t_sel = time.perf_counter()

        tr = spec.worker.training
        jobs = []
        for i, client in enumerate(spec.clients):
            steps = num_local_steps(spec.n_train[i], tr.batch_size, tr.local_epochs, tr.local_steps)
            seed = derive_seed(spec.seed, r, i)
            args = (client, seed, masks[i], state, versions, self.private.get(client))
            jobs.append(Job("train", args, cost=steps * min(spec.n_train[i], tr.batch_size)))
        updates = run(jobs)
        t_train = time.perf_counter()

        self.state = self.strategy.aggregate(
            self.state, [(u.tensors, u.n_samples) for u in updates]
        )
        for client, u in zip(spec.clients, updates, strict=True):
            if u.private:
                self.private[client] = u.private
        for u in updates:
            for name in u.tensors:
                self.version[name] = r + 1
        self.round = r + 1

        state = self.executor.share(self.state)
        versions = dict(self.version)
        eval_jobs = []
        for i, client in enumerate(spec.clients):
            seed = derive_eval_seed(spec.seed, r, i)
            args = (client, seed, state, versions, self.private.get(client))
            eval_jobs.append(Job("evaluate", args, cost=spec.n_test[i]))
        evals = run(eval_jobs)
        t_eval = time.perf_counter()

        sizes = {n: a.size for n, a in self.state.items()}
        sent = sum(sizes[n] for u in updates for n in u.tensors)
        total = {k: sum(e[k] for e in evals) for k in evals[0]}
        by_client = list(zip(spec.clients, updates, evals, strict=True))
        return RoundResult(
            round=self.round,
            masks=masks,
            raw_scores=self.raw_scores if fresh else None,
            scores=scores if fresh else None,
            selection_metrics=selection.metrics(scores),
            pareto_png=selection.figure_png(f"round {r + 1}: Pareto front, pick and top-k"),
            train_loss={c: u.loss for c, u, _ in by_client},
            client_score={c: score_of(e, spec.task) for c, _, e in by_client},
            client_loss={c: e["loss_sum"] / e["n"] for c, _, e in by_client},
            score=score_of(total, spec.task),
            loss=total["loss_sum"] / total["n"],
            # the selected tensors go down to each client and come back up: same count each way
            # (a client's private tensors, FedDAT's own adapters, never travel)
            mbit_up=sent * BITS_PER_PARAM / 1e6,
            mbit_down=sent * BITS_PER_PARAM / 1e6,
            trainable_params=sent + sum(u.private_params for u in updates),
            client_gflops={c: u.gflops for c, u, _ in by_client},
            seconds_score=t_score - t0,
            seconds_select=t_sel - t_score,
            seconds_train=t_train - t_sel,
            seconds_eval=t_eval - t_train,
            seconds=t_eval - t0,
        )
