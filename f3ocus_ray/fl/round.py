"""The federated round, apart from where it runs (pfl-research's algorithm/backend split).

`Federation` holds the global state and runs rounds on an `Executor` (fl/executors.py). It never
holds data. Each round: the round's participants are drawn (every client, or
`clients_per_round` of them, seeded by (seed, round)); they score their units when the
strategy says so (and any participant without a score yet scores); the strategy picks each
participant's units within its budget; the global state goes once to the executor; the
participants train (longest first on a pool); the strategy aggregates their updates in client
order; the new global model is evaluated on every client's test split, or on a seeded sample
of `eval_clients_per_round` clients (the last round: on every client).

What the driver keeps grows with the number of clients, never with rounds: the budgets, the
latest raw scores (clients x units, NaN for a client never scored) and FedDAT's private state.
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
from f3ocus_ray.seeding import (
    derive_eval_clients,
    derive_eval_seed,
    derive_participants,
    derive_score_seed,
    derive_seed,
)
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
    clients_per_round: int | None = None  # partial participation: trainers per round; None = all
    eval_clients_per_round: int | None = None  # clients evaluated per round; None = all
    rounds: int | None = None  # the run's last round evaluates every client


@dataclass
class RoundResult:
    """One round. Per-client entries cover the round's participants (masks, scores, training)
    or the clients it evaluated (client_score, client_loss); `score` and `loss` pool the
    evaluated clients' test samples (every client's, unless `eval_clients_per_round`)."""

    round: int
    participants: list[str]  # the clients that trained, in client order
    masks: np.ndarray  # (participants, units) bool
    raw_scores: np.ndarray | None  # (participants, units) importance, in rounds that scored
    scores: np.ndarray | None  # the same, normalised per client (S in the paper)
    train_loss: dict[str, float]  # participants
    client_score: dict[str, float]  # evaluated clients
    client_loss: dict[str, float]
    score: float  # accuracy (vqa) or micro-F1 (multilabel) over the evaluated test samples
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
    engine: dict[str, float] = field(default_factory=dict)  # e.g. affinity_hits

    def metrics(self) -> dict[str, float]:
        """Flat per-round metrics for tracking."""
        out = {
            "score": self.score,
            "loss": self.loss,
            "participants": float(len(self.participants)),
            "eval_clients": float(len(self.client_score)),
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
            **{f"engine/{k}": v for k, v in self.engine.items()},
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
        raw = d.get("raw_scores")
        self.raw_scores = None if raw is None else np.array(raw)  # writable (object store)
        self.private = dict(d.get("private") or {})

    # -- who takes part ------------------------------------------------------------------
    def participants(self, r: int) -> np.ndarray:
        """The indices of the clients that train in round r (sorted; every client by default)."""
        n = len(self.spec.clients)
        return derive_participants(self.spec.seed, r, n, self.spec.clients_per_round or n)

    def evaluated(self, r: int) -> np.ndarray:
        """The indices of the clients evaluated after round r (every client in the last)."""
        n, spec = len(self.spec.clients), self.spec
        last = spec.rounds is not None and r + 1 >= spec.rounds
        k = n if last else (spec.eval_clients_per_round or n)
        return derive_eval_clients(spec.seed, r, n, k)

    # -- the round -----------------------------------------------------------------------
    def _score(self, r: int, idx: np.ndarray, state: Any, versions: dict[str, int]) -> None:
        """Clients `idx` score their units under the current global model (raw, into
        `raw_scores`, whose other rows keep what they were)."""
        clients = self.spec.clients
        jobs = []
        for i in idx:
            seed = derive_score_seed(self.spec.seed, r, int(i))
            jobs.append(Job("score", (clients[i], seed, state, versions), client=clients[i]))
        raw = np.stack([raw for raw, _ in self.executor.run(jobs)])
        if self.raw_scores is None:
            self.raw_scores = np.full((len(clients), raw.shape[1]), np.nan, dtype=raw.dtype)
        self.raw_scores[idx] = raw

    def _to_score(self, r: int, part: np.ndarray) -> np.ndarray:
        """The participants that score this round: all of them when scores are due; else
        those without a score yet, when the strategy selects by scores."""
        if self.strategy.scores_due(r):
            return part
        if not self.strategy.needs_scores:
            return part[:0]
        if self.raw_scores is None:
            return part
        return part[np.isnan(self.raw_scores[part]).any(axis=1)]

    def run_round(self) -> RoundResult:
        t0 = time.perf_counter()
        spec, r, run = self.spec, self.round, self.executor.run
        hits0 = self.executor.affinity_hits()
        part = self.participants(r)
        names = [spec.clients[i] for i in part]
        state = self.executor.share(self.state)
        versions = dict(self.version)
        to_score = self._to_score(r, part)
        if len(to_score):
            self._score(r, to_score, state, versions)
        t_score = time.perf_counter()
        scores = None
        if self.raw_scores is not None and not np.isnan(self.raw_scores[part]).any():
            scores = np.stack([normalise(row) for row in self.raw_scores[part]])
        selection = self.strategy.select(r, self.budgets[part], len(spec.unit_names), scores)
        masks = selection.masks
        t_sel = time.perf_counter()

        tr = spec.worker.training
        jobs = []
        for k, i in enumerate(part):
            client, n = spec.clients[i], spec.n_train[i]
            steps = num_local_steps(n, tr.batch_size, tr.local_epochs, tr.local_steps)
            seed = derive_seed(spec.seed, r, int(i))
            args = (client, seed, masks[k], state, versions, self.private.get(client))
            jobs.append(Job("train", args, cost=steps * min(n, tr.batch_size), client=client))
        updates = run(jobs)
        t_train = time.perf_counter()

        # FedAvg over the participants alone, weighted by their training samples
        self.state = self.strategy.aggregate(
            self.state, [(u.tensors, u.n_samples) for u in updates]
        )
        for client, u in zip(names, updates, strict=True):
            if u.private:
                self.private[client] = u.private
        for u in updates:
            for name in u.tensors:
                self.version[name] = r + 1
        self.round = r + 1

        state = self.executor.share(self.state)
        versions = dict(self.version)
        tested_idx = self.evaluated(r)
        evaluated = [spec.clients[i] for i in tested_idx]
        eval_jobs = []
        for i, client in zip(tested_idx, evaluated, strict=True):
            seed = derive_eval_seed(spec.seed, r, int(i))
            args = (client, seed, state, versions, self.private.get(client))
            eval_jobs.append(Job("evaluate", args, cost=spec.n_test[i], client=client))
        evals = run(eval_jobs)
        t_eval = time.perf_counter()

        sizes = {n: a.size for n, a in self.state.items()}
        sent = sum(sizes[n] for u in updates for n in u.tensors)
        total = {k: sum(e[k] for e in evals) for k in evals[0]}
        trained = list(zip(names, updates, strict=True))
        tested = list(zip(evaluated, evals, strict=True))
        scored = len(to_score) > 0
        return RoundResult(
            round=self.round,
            participants=names,
            masks=masks,
            raw_scores=self.raw_scores[part] if scored else None,
            scores=scores if scored else None,
            selection_metrics=selection.metrics(scores),
            pareto_png=selection.figure_png(f"round {r + 1}: Pareto front, pick and top-k"),
            train_loss={c: u.loss for c, u in trained},
            client_score={c: score_of(e, spec.task) for c, e in tested},
            client_loss={c: e["loss_sum"] / e["n"] for c, e in tested},
            score=score_of(total, spec.task),
            loss=total["loss_sum"] / total["n"],
            # the selected tensors go down to each participant and come back up: same count
            # each way (a client's private tensors, FedDAT's own adapters, never travel)
            mbit_up=sent * BITS_PER_PARAM / 1e6,
            mbit_down=sent * BITS_PER_PARAM / 1e6,
            trainable_params=sent + sum(u.private_params for u in updates),
            client_gflops={c: u.gflops for c, u in trained},
            seconds_score=t_score - t0,
            seconds_select=t_sel - t_score,
            seconds_train=t_train - t_sel,
            seconds_eval=t_eval - t_train,
            seconds=t_eval - t0,
            engine={
                "affinity_hits": float(self.executor.affinity_hits() - hits0),
                "jobs": float(len(to_score) + len(jobs) + len(eval_jobs)),
            },
        )
