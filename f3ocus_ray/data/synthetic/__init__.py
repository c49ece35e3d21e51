"""The synthetic data sets, generated deterministically in the on-disk format.

:func:`synthesize` writes one task's set. The generators, one job each: ``medvqa`` (the
9-client MedVQA-FL, Task 3), ``domain_gap`` (5 VQA sources with their own image style and
phrasing, Task 1), ``multilabel`` (chest X-ray classification with Dirichlet label shift,
Tasks 4-5); they share ``plan`` (seed check, split, question-type schedule), ``questions``
(attributes and question templates), ``images`` (the nine modality renderers) and ``draw``
(numpy drawing primitives).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

from ..format import DataError, DatasetWriter, Sample, encode_png
from .domain_gap import generate_domain_gap
from .medvqa import MIXED_VQA_CLIENTS, client_sizes, generate_vqa
from .multilabel import generate_multilabel
from .plan import check_seed

__all__ = ["synthesize"]

# A part of the set: its generator (taking `window=`), how many samples it yields, and what is
# done to each sample after (Task 6 renames its classification clients).
_Part = tuple[Callable[..., Iterator[Sample]], int, Callable[[Sample], Sample] | None]


def _as_classification_client(s: Sample) -> Sample:
    return replace(
        s, client=s.client.replace("client_", "cls_"), where=s.where.replace("client_", "cls_")
    )


def _parts(
    task: str,
    *,
    seed: int,
    scale: float,
    min_per_client: int,
    image_size: int,
    n_clients: int,
    alpha: float,
    samples_per_client: int,
) -> tuple[dict, list[_Part]]:
    """The set's parameters (for meta.json) and its parts in file order."""
    if task == "vqa":
        params = {"scale": scale, "min_per_client": min_per_client}
        n = sum(client_sizes(scale, min_per_client).values())
        gen = functools.partial(
            generate_vqa,
            seed=seed,
            scale=scale,
            min_per_client=min_per_client,
            image_size=image_size,
        )
        return params, [(gen, n, None)]
    if task == "domain_gap":
        params = {"samples_per_client": samples_per_client}
        gen = functools.partial(
            generate_domain_gap,
            seed=seed,
            samples_per_client=samples_per_client,
            image_size=image_size,
        )
        return params, [(gen, 5 * samples_per_client, None)]
    if task in ("multilabel", "mixed"):
        params = {"n_clients": n_clients, "alpha": alpha, "samples_per_client": samples_per_client}
        cls = functools.partial(
            generate_multilabel,
            seed=seed,
            n_clients=n_clients,
            alpha=alpha,
            samples_per_client=samples_per_client,
            image_size=image_size,
        )
        n_cls = n_clients * samples_per_client
        if task == "multilabel":
            return params, [(cls, n_cls, None)]
        params.update(scale=scale, min_per_client=min_per_client)
        sizes = client_sizes(scale, min_per_client)
        vqa = functools.partial(
            generate_vqa,
            seed=seed,
            scale=scale,
            min_per_client=min_per_client,
            image_size=image_size,
            clients=MIXED_VQA_CLIENTS,
        )
        n_vqa = sum(sizes[c] for c in MIXED_VQA_CLIENTS)
        return params, [(vqa, n_vqa, None), (cls, n_cls, _as_classification_client)]
    raise DataError(
        f"unknown task {task!r} (expected 'vqa', 'domain_gap', 'multilabel' or 'mixed')"
    )


def _render(part: _Part, window: range) -> list[tuple[Sample, bytes]]:
    """The samples at `window` of one part, their images encoded (run in a worker process)."""
    gen, _, after = part
    out = []
    for s in gen(window=window):
        s = after(s) if after is not None else s
        out.append((replace(s, image=b""), encode_png(s.image)))  # type: ignore[arg-type]
    return out


def _chunk_size(image_size: int) -> int:
    """Samples per job: about 32 MB of raw pixels, between 16 and 512."""
    return max(16, min(512, (32 << 20) // (3 * image_size * image_size)))


class _Progress:
    """tqdm's bar when it is installed, else a line on stderr every 5% (off: silent)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.enabled, self._bar = total, 0, enabled, None
        self._next = 0
        if enabled:
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, unit="sample", desc="synthesize", file=sys.stderr)
            except ImportError:
                pass

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and (self.done >= self._next or self.done == self.total):
            print(f"synthesize: {self.done}/{self.total} samples", file=sys.stderr, flush=True)
            self._next = self.done + max(1, self.total // 20)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _rendered(
    parts: list[_Part], image_size: int, workers: int, progress: _Progress
) -> Iterator[tuple[Sample, bytes]]:
    """Every sample in file order, rendered by `workers` processes (a bounded number of jobs
    in flight, so memory stays at a few jobs' images whatever the set's size)."""
    size = _chunk_size(image_size)
    jobs = [(p, range(a, min(a + size, p[1]))) for p in parts for a in range(0, p[1], size)]
    if workers <= 1 or len(jobs) <= 1:
        for part, window in jobs:
            chunk = _render(part, window)
            progress.update(len(chunk))
            yield from chunk
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: list[Future] = []
        todo = iter(jobs)
        for job in todo:
            pending.append(pool.submit(_render, *job))
            if len(pending) >= 2 * workers:
                break
        while pending:
            chunk = pending.pop(0).result()
            job = next(todo, None)
            if job is not None:
                pending.append(pool.submit(_render, *job))
            progress.update(len(chunk))
            yield from chunk


def synthesize(
    out_dir: str | Path,
    *,
    task: str = "vqa",
    seed: int = 0,
    scale: float = 0.002,
    min_per_client: int = 40,
    image_size: int = 64,
    n_clients: int = 4,
    alpha: float = 0.5,
    samples_per_client: int = 250,
    overwrite: bool = False,
    workers: int = 1,
    progress: bool = False,
) -> Path:
    """Write a synthetic data set in the on-disk format and return its folder.

    ``task="vqa"``: MedVQA-FL (uses ``scale`` and ``min_per_client``; ``scale=1`` gives the
    paper's client sizes).
    ``task="multilabel"``: chest X-ray multi-label classification with Dirichlet(``alpha``)
    label shift over ``n_clients`` clients of ``samples_per_client`` images each.
    ``task="domain_gap"``: 5 VQA source clients with their own image style and phrasing
    (Task 1's stand-in), ``samples_per_client`` each.
    ``task="mixed"``: Task 6's stand-in, 3 MedVQA-FL clients (:data:`MIXED_VQA_CLIENTS`, sized
    by ``scale`` and ``min_per_client``) and ``n_clients`` multi-label chest X-ray clients
    (``cls_<i>``, Dirichlet(``alpha``), ``samples_per_client`` each).
    ``workers`` processes render and encode the images (every sample has its own random
    stream, so the files are the same for any number); ``progress`` shows a progress bar.
    Refuses a non-empty ``out_dir`` unless ``overwrite``; the folder appears atomically.
    """
    check_seed(seed)
    if image_size < 8:
        raise DataError(f"image_size must be >= 8, got {image_size}")
    if workers < 1:
        raise DataError(f"workers must be >= 1, got {workers}")
    params, parts = _parts(
        task,
        seed=seed,
        scale=scale,
        min_per_client=min_per_client,
        image_size=image_size,
        n_clients=n_clients,
        alpha=alpha,
        samples_per_client=samples_per_client,
    )
    with DatasetWriter(out_dir, overwrite=overwrite) as writer:
        bar = _Progress(sum(p[1] for p in parts), progress)
        try:
            for sample, png in _rendered(parts, image_size, workers, bar):
                writer.add(sample, png)
        finally:
            bar.close()
        writer.meta = {
            "generator": "f3ocus_ray.data.synthesize",
            "task": task,
            "seed": seed,
            "image_size": image_size,
            **params,
        }
    return writer.path
