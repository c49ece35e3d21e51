"""ClientWorker: a long-lived process that hosts the model once and serves many clients.

A client is data and a seed, not a process. Before each call the worker brings the tensors
whose global version changed (or that the previous client trained) up to the global state, so
only changed tensors are copied; then it trains or evaluates one client.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from f3ocus_ray.fl.training import evaluate, local_train, num_local_steps
from f3ocus_ray.models import ModelSpec, build_model
from f3ocus_ray.task import ClientTensors

_DIRTY = -1  # version marker of a tensor a client changed locally


def _host(t: torch.Tensor) -> np.ndarray:
    """A parameter as a float32 numpy copy (from any device and dtype, bfloat16 included)."""
    return t.detach().float().cpu().numpy().copy()


@dataclass(frozen=True)
class TrainSettings:
    local_epochs: int
    local_steps: int | None
    batch_size: int
    lr: float
    weight_decay: float
    eval_batch_size: int
    train_head: bool
    distill_weight: float = 1.0  # FedDAT (units dual_adapters): mutual KD weight
    distill_temperature: float = 1.0


@dataclass(frozen=True)
class ScoringSettings:
    method: str
    mode: str
    n_samples: int
    chunk_size: int
    tol: float
    max_iter: int


@dataclass(frozen=True)
class WorkerSpec:
    """Plain data a worker needs to build itself, shipped once at actor creation."""

    model: ModelSpec
    data_path: str
    image_size: int
    tokenizer_json: str
    max_text_len: int
    training: TrainSettings
    torch_threads: int
    scoring: ScoringSettings | None = None


@dataclass
class ClientUpdate:
    tensors: dict[str, np.ndarray]
    n_samples: int
    loss: float
    seconds: float
    steps: int
    gflops: float  # training compute of this client this round (forward + backward)
    # the client's own state that never travels (FedDAT's client-specific adapters): kept by the
    # driver for the client, not counted in Mbit
    private: dict[str, np.ndarray] = field(default_factory=dict)
    private_params: int = 0  # parameters trained locally but never sent


class ClientWorker:
    def __init__(self, spec: WorkerSpec):
        # one torch thread per reserved CPU: more threads than cores collapse under load
        torch.set_num_threads(spec.torch_threads)
        self.spec = spec
        self.model, self.space = build_model(spec.model)
        self._params = dict(self.model.named_parameters())
        self._loaded: dict[str, int] = {}
        self._tensors: dict[tuple[str, str], ClientTensors] = {}
        self._dataset: Any = None
        # FLOPs per sample depend only on which units train (backward stops at the first one;
        # every client's inputs have the same padded shapes): measured once per mask, reused
        self._flops: dict[bytes, float] = {}
        self._tokenizer: Any = None
        # FedDAT: every client's client-specific adapters start from these (same on every worker)
        self._feddat = spec.model.units == "dual_adapters"
        self._private_init: dict[str, np.ndarray] = {}
        if self._feddat:
            from f3ocus_ray.models.feddat import local_state

            self._private_init = local_state(self.model, self.space)

    # -- state ---------------------------------------------------------------------------
    def initial_state(self) -> dict[str, np.ndarray]:
        return {n: _host(self._params[n]) for n in self.space.all_params}

    def _sync(self, state: dict[str, np.ndarray], versions: dict[str, int]) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", UserWarning)  # read-only arrays from the object store
            for name, version in versions.items():
                if self._loaded.get(name) != version:
                    self._params[name].copy_(torch.from_numpy(state[name]))
                    self._loaded[name] = version

    # -- data ----------------------------------------------------------------------------
    def _client(self, client: str, split: str) -> ClientTensors:
        key = (client, split)
        if key not in self._tensors:
            from f3ocus_ray.data.client_tensors import load_client_tensors, open_dataset

            if self._dataset is None:
                self._dataset, self._tokenizer = open_dataset(
                    self.spec.data_path, self.spec.image_size, self.spec.tokenizer_json
                )
            from f3ocus_ray.models.families import is_generative

            m = self.spec.model
            self._tensors[key] = load_client_tensors(
                self._dataset,
                self._tokenizer,
                client,
                split,
                self.spec.max_text_len,
                answer_len=m.max_answer_len if is_generative(m.name) else None,
            ).to(next(self.model.parameters()).device)
        return self._tensors[key]

    def preload(self, clients: list[str]) -> int:
        """Decode these clients' splits now rather than on first use; returns samples held."""
        return sum(len(self._client(c, s)) for c in clients for s in ("train", "test"))

    # -- work ----------------------------------------------------------------------------
    def train(
        self,
        client: str,
        seed: int,
        mask: np.ndarray,
        state: dict[str, np.ndarray],
        versions: dict[str, int],
        private: dict[str, np.ndarray] | None = None,
    ) -> ClientUpdate:
        """Train one client; `private` is its own never-sent state (FedDAT: its adapters)."""
        t0 = time.perf_counter()
        data = self._client(client, "train")
        self._sync(state, versions)
        head = self.spec.training.train_head
        names = self.space.trainable(mask, head, data.outputs)
        params = self.space.apply(self.model, mask, head, data.outputs)
        tr = self.spec.training
        step_loss, own = None, []
        if self._feddat:
            from f3ocus_ray.models.feddat import dat_step_loss, freeze_received, local_names

            self._load_private(private)
            freeze_received(self.model)  # the teacher's frozen copy of the received adapters
            own = [self._params[n] for n in local_names(self.space, mask)]
            for p in own:
                p.requires_grad_(True)
            params = params + own
            step_loss = dat_step_loss(tr.distill_weight, tr.distill_temperature)
        steps = num_local_steps(len(data), tr.batch_size, tr.local_epochs, tr.local_steps)
        key = np.asarray(mask, dtype=bool).tobytes()
        stats = local_train(
            self.model,
            params,
            data,
            steps=steps,
            batch_size=tr.batch_size,
            lr=tr.lr,
            weight_decay=tr.weight_decay,
            seed=seed,
            count_flops=key not in self._flops,
            step_loss=step_loss,
        )
        if stats.flops_per_sample is not None:
            self._flops[key] = stats.flops_per_sample
        tensors = {n: _host(self._params[n]) for n in names}
        for n in names:
            self._loaded[n] = _DIRTY
        kept = {}
        if self._feddat:
            from f3ocus_ray.models.feddat import local_state

            kept = local_state(self.model, self.space)
        return ClientUpdate(
            tensors,
            len(data),
            stats.loss,
            time.perf_counter() - t0,
            steps,
            gflops=self._flops[key] * stats.samples / 1e9,
            private=kept,
            private_params=sum(p.numel() for p in own),
        )

    def _load_private(self, private: dict[str, np.ndarray] | None) -> None:
        """FedDAT: bring in the client's own adapters (the initial ones on its first round)."""
        from f3ocus_ray.models.feddat import load_local

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # read-only arrays from the object store
            load_local(self.model, private or self._private_init)

    def evaluate(
        self,
        client: str,
        seed: int,
        state: dict[str, np.ndarray],
        versions: dict[str, int],
        private: dict[str, np.ndarray] | None = None,
    ) -> dict[str, float]:
        data = self._client(client, "test")
        self._sync(state, versions)
        if not self._feddat:
            return evaluate(self.model, data, self.spec.training.eval_batch_size, seed=seed)
        # FedDAT: the client's personalised model, its own adapters next to the global shared
        # ones (the Dual-Adapter Teacher built from the new global model)
        from f3ocus_ray.models.feddat import freeze_received, set_teacher

        self._load_private(private)
        freeze_received(self.model)
        set_teacher(self.model, True)
        try:
            return evaluate(self.model, data, self.spec.training.eval_batch_size, seed=seed)
        finally:
            set_teacher(self.model, False)

    def score(
        self, client: str, seed: int, state: dict[str, np.ndarray], versions: dict[str, int]
    ) -> tuple[np.ndarray, float]:
        """Per-unit importance of the client's train data under the global model: (raw, s)."""
        from f3ocus_ray.scoring import score_units

        sc = self.spec.scoring
        if sc is None:
            raise RuntimeError("this worker was built without scoring settings")
        data = self._client(client, "train")
        self._sync(state, versions)
        result = score_units(
            self.model,
            self.space,
            data,
            method=sc.method,
            mode=sc.mode,
            n_samples=sc.n_samples,
            seed=seed,
            chunk_size=sc.chunk_size,
            tol=sc.tol,
            max_iter=sc.max_iter,
        )
        return result.raw, result.seconds

    def pid(self) -> int:
        return os.getpid()

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def peak_rss_mb(self) -> float:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
