"""ClientWorker: a long-lived process that hosts the model once and serves many clients.

A client is data and a seed, not a process. Before each call the worker brings the tensors
whose global version changed (or that the previous client trained) up to the global state, so
only changed tensors are copied; then it trains or evaluates one client. What a method does on
the client beyond plain training (FedDAT's private adapters and its distillation loss) comes
from the unit mode's `ClientMethod`, whose hooks the worker calls.
"""

from __future__ import annotations

import ctypes
import functools
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from f3ocus_ray.config import ScoringConfig, TrainingConfig
from f3ocus_ray.fl.training import evaluate, local_train, num_local_steps
from f3ocus_ray.models import ModelSpec, build_model
from f3ocus_ray.models.registry import is_generative
from f3ocus_ray.models.units import get_unit_mode
from f3ocus_ray.task import ClientTensors
from f3ocus_ray.timing import mark

_DIRTY = -1  # version marker of a tensor a client changed locally


@functools.cache
def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # no glibc
        return None


def _release_freed_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's malloc_trim): after a job, the
    freed activations and gradients otherwise stay in the process's RSS (~90 MB a worker on
    the demo)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _host(t: torch.Tensor) -> np.ndarray:
    """A parameter as a float32 numpy copy (from any device and dtype, bfloat16 included)."""
    return t.detach().float().cpu().numpy().copy()


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to build itself, shipped once at actor creation: the config's
    frozen `training` and (effective) `scoring` sections as they are."""

    model: ModelSpec
    data_path: str
    image_size: int
    tokenizer_json: str
    max_text_len: int
    training: TrainingConfig
    torch_threads: int
    scoring: ScoringConfig | None = None
    # the decoded cache's folder (None: .f3ocus-cache under the data set) and the MiB of
    # client splits a worker holds in memory (larger ones stream from that cache per batch)
    data_cache_dir: str | None = None
    worker_cache_mb: float = 1024.0


@dataclass
class ClientUpdate:
    tensors: dict[str, np.ndarray]
    n_samples: int
    loss: float
    seconds: float
    steps: int
    gflops: float  # training compute of this client this round (forward + backward)
    # the client's private state that never travels (FedDAT's client-specific adapters): kept
    # by the driver for the client, not counted in Mbit
    private: dict[str, np.ndarray] = field(default_factory=dict)
    private_params: int = 0  # parameters trained locally but never sent


class ClientWorker:
    def __init__(self, spec: WorkerSpec):
        mark("worker_init")
        # one torch thread per reserved CPU: more threads than cores collapse under load
        torch.set_num_threads(spec.torch_threads)
        self.spec = spec
        self.model, self.space = build_model(spec.model)
        mark("model_built")
        self._trained = False  # for the start-up timeline: the first train call is marked
        self._params = dict(self.model.named_parameters())
        self._loaded: dict[str, int] = {}
        self._splits: Any = None  # SplitLRU, opened on first use
        # FLOPs per sample depend only on which units train (backward stops at the first one;
        # every client's inputs have the same padded shapes): measured once per mask, reused
        self._flops: dict[bytes, float] = {}
        # the unit mode's client-side hooks (a no-op for all but FedDAT)
        mode = get_unit_mode(spec.model.unit_mode)
        self.method = mode.client_method(self.model, self.space, spec.model)

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
        if self._splits is None:
            from f3ocus_ray.data.client_tensors import open_dataset
            from f3ocus_ray.data.decoded_cache import DecodedCache
            from f3ocus_ray.data.split_lru import SplitLRU

            sp, m = self.spec, self.spec.model
            ds, tok = open_dataset(sp.data_path, sp.image_size, sp.tokenizer_json)
            cache = DecodedCache(
                ds,
                tok,
                sp.tokenizer_json,
                sp.max_text_len,
                answer_len=m.max_answer_length if is_generative(m.name) else None,
                root=sp.data_cache_dir,
            )
            self._splits = SplitLRU(
                lambda key: cache.open(*key),
                int(sp.worker_cache_mb * 2**20),
                next(self.model.parameters()).device,
            )
        return self._splits.get((client, split))

    def cache_stats(self) -> dict[str, float]:
        """The in-memory split cache's counters: hits, misses, evictions and MiB held."""
        lru = self._splits
        if lru is None:
            return {"hits": 0, "misses": 0, "evictions": 0, "held_mb": 0.0}
        held = lru.held_bytes / 2**20
        return {"hits": lru.hits, "misses": lru.misses, "evictions": lru.evictions, "held_mb": held}

    def _data(self, client: str, split: str) -> ClientTensors:
        """`_client`, timed for the start-up timeline (the first call of a split decodes)."""
        t0 = time.perf_counter()
        data = self._client(client, split)
        mark("data", client=client, split=split, seconds=time.perf_counter() - t0)
        return data

    def preload(self, clients: list[str]) -> int:
        """Decode these clients' splits now rather than on first use; returns samples held."""
        return sum(len(self._data(c, s)) for c in clients for s in ("train", "test"))

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
        """Train one client; `private` is its never-sent state (FedDAT: its own adapters)."""
        t0 = time.perf_counter()
        data = self._data(client, "train")
        self._sync(state, versions)
        if not self._trained:
            mark("first_step", client=client)  # every fixed cost is paid: training starts
            self._trained = True
        head = self.spec.model.train_head
        names = self.space.trainable(mask, head, data.outputs)
        params = self.space.apply(self.model, mask, head, data.outputs)
        private_trained = self.method.prepare_train(private, mask)  # never sent
        tr = self.spec.training
        steps = num_local_steps(len(data), tr.batch_size, tr.local_epochs, tr.local_steps)
        key = np.asarray(mask, dtype=bool).tobytes()
        stats = local_train(
            self.model,
            params + private_trained,
            data,
            steps=steps,
            batch_size=tr.batch_size,
            lr=tr.lr,
            weight_decay=tr.weight_decay,
            seed=seed,
            count_flops=key not in self._flops,
            step_loss=self.method.step_loss(),
            precision=tr.precision,
            micro_batch_size=tr.micro_batch_size,
            gradient_checkpointing=tr.gradient_checkpointing,
        )
        if stats.flops_per_sample is not None:
            self._flops[key] = stats.flops_per_sample
        tensors = {n: _host(self._params[n]) for n in names}
        for n in names:
            self._loaded[n] = _DIRTY
        _release_freed_memory()
        return ClientUpdate(
            tensors,
            len(data),
            stats.loss,
            time.perf_counter() - t0,
            steps,
            gflops=self._flops[key] * stats.samples / 1e9,
            private=self.method.collect_private(),
            private_params=sum(p.numel() for p in private_trained),
        )

    def evaluate(
        self,
        client: str,
        seed: int,
        state: dict[str, np.ndarray],
        versions: dict[str, int],
        private: dict[str, np.ndarray] | None = None,
    ) -> dict[str, float]:
        """The client's test metrics under the global state (with its private state, FedDAT's
        personalised model)."""
        data = self._data(client, "test")
        self._sync(state, versions)
        with self.method.eval_context(private):
            out = evaluate(self.model, data, self.spec.training.eval_batch_size, seed=seed)
        _release_freed_memory()
        return out

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
            gradient_budget_mb=sc.gradient_budget_mb,
            vmap_size=sc.vmap_size,
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
