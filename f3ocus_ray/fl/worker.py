"""ClientWorker: a long-lived process that hosts the model once and serves many clients.

A client is data and a seed, not a process. Before each call the worker brings the tensors
whose global version changed (or that the previous client trained) up to the global state, so
only changed tensors are copied; then it trains or evaluates one client.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from f3ocus_ray.fl.training import ClientTensors, evaluate, local_train, num_local_steps
from f3ocus_ray.models import ModelSpec, build_model

_DIRTY = -1  # version marker of a tensor a client changed locally


@dataclass(frozen=True)
class TrainSettings:
    local_epochs: int
    local_steps: int | None
    batch_size: int
    lr: float
    weight_decay: float
    eval_batch_size: int
    train_head: bool


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

    # -- state ---------------------------------------------------------------------------
    def initial_state(self) -> dict[str, np.ndarray]:
        return {n: self._params[n].detach().numpy().copy() for n in self.space.all_params}

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
            from f3ocus_ray.fl.client_data import load_client_tensors, open_dataset

            if self._dataset is None:
                self._dataset, self._tokenizer = open_dataset(
                    self.spec.data_path, self.spec.image_size, self.spec.tokenizer_json
                )
            self._tensors[key] = load_client_tensors(
                self._dataset, self._tokenizer, client, split, self.spec.max_text_len
            )
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
    ) -> ClientUpdate:
        t0 = time.perf_counter()
        data = self._client(client, "train")
        self._sync(state, versions)
        head = self.spec.training.train_head
        names = self.space.trainable(mask, head, data.outputs)
        params = self.space.apply(self.model, mask, head, data.outputs)
        tr = self.spec.training
        steps = num_local_steps(len(data), tr.batch_size, tr.local_epochs, tr.local_steps)
        torch.manual_seed(seed)  # ViLT's patch order, and any op drawing from torch's generator
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
        )
        if stats.flops_per_sample is not None:
            self._flops[key] = stats.flops_per_sample
        tensors = {n: self._params[n].detach().numpy().copy() for n in names}
        for n in names:
            self._loaded[n] = _DIRTY
        return ClientUpdate(
            tensors,
            len(data),
            stats.loss,
            time.perf_counter() - t0,
            steps,
            gflops=self._flops[key] * stats.samples / 1e9,
        )

    def evaluate(
        self, client: str, seed: int, state: dict[str, np.ndarray], versions: dict[str, int]
    ) -> dict[str, float]:
        data = self._client(client, "test")
        self._sync(state, versions)
        # ViLT draws a random order of image patches in every forward pass: the order changes
        # float sums, so it is seeded too
        torch.manual_seed(seed)
        return evaluate(self.model, data, self.spec.training.eval_batch_size)

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

    def peak_rss_mb(self) -> float:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
