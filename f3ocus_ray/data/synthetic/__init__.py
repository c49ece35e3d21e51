"""The synthetic data sets, generated deterministically in the on-disk format.

:func:`synthesize` writes one task's set. The generators, one job each: ``medvqa`` (the
9-client MedVQA-FL, Task 3), ``domain_gap`` (5 VQA sources with their own image style and
phrasing, Task 1), ``multilabel`` (chest X-ray classification with Dirichlet label shift,
Tasks 4-5); they share ``plan`` (seed check, split, question-type schedule), ``questions``
(attributes and question templates), ``images`` (the nine modality renderers) and ``draw``
(numpy drawing primitives).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

from ..format import DataError, DatasetWriter
from .domain_gap import generate_domain_gap
from .medvqa import MIXED_VQA_CLIENTS, generate_vqa
from .multilabel import generate_multilabel
from .plan import check_seed

__all__ = ["synthesize"]


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
) -> Path:
    """Write a synthetic data set in the on-disk format and return its folder.

    ``task="vqa"``: MedVQA-FL (uses ``scale`` and ``min_per_client``).
    ``task="multilabel"``: chest X-ray multi-label classification with Dirichlet(``alpha``)
    label shift over ``n_clients`` clients of ``samples_per_client`` images each.
    ``task="domain_gap"``: 5 VQA source clients with their own image style and phrasing
    (Task 1's stand-in), ``samples_per_client`` each.
    ``task="mixed"``: Task 6's stand-in, 3 MedVQA-FL clients (:data:`MIXED_VQA_CLIENTS`, sized
    by ``scale`` and ``min_per_client``) and ``n_clients`` multi-label chest X-ray clients
    (``cls_<i>``, Dirichlet(``alpha``), ``samples_per_client`` each).
    Refuses a non-empty ``out_dir`` unless ``overwrite``; the folder appears atomically.
    """
    check_seed(seed)
    if task == "vqa":
        params = {"scale": scale, "min_per_client": min_per_client}
        samples = generate_vqa(
            seed=seed, scale=scale, min_per_client=min_per_client, image_size=image_size
        )
    elif task == "domain_gap":
        params = {"samples_per_client": samples_per_client}
        samples = generate_domain_gap(
            seed=seed, samples_per_client=samples_per_client, image_size=image_size
        )
    elif task in ("multilabel", "mixed"):
        params = {"n_clients": n_clients, "alpha": alpha, "samples_per_client": samples_per_client}
        samples = generate_multilabel(
            seed=seed,
            n_clients=n_clients,
            alpha=alpha,
            samples_per_client=samples_per_client,
            image_size=image_size,
        )
        if task == "mixed":
            params.update(scale=scale, min_per_client=min_per_client)
            vqa = generate_vqa(
                seed=seed,
                scale=scale,
                min_per_client=min_per_client,
                image_size=image_size,
                clients=MIXED_VQA_CLIENTS,
            )
            renamed = (
                replace(
                    s,
                    client=s.client.replace("client_", "cls_"),
                    where=s.where.replace("client_", "cls_"),
                )
                for s in samples
            )
            samples = itertools.chain(vqa, renamed)
    else:
        raise DataError(
            f"unknown task {task!r} (expected 'vqa', 'domain_gap', 'multilabel' or 'mixed')"
        )
    with DatasetWriter(out_dir, overwrite=overwrite) as writer:
        for s in samples:
            writer.add(s)
        writer.meta = {
            "generator": "f3ocus_ray.data.synthesize",
            "task": task,
            "seed": seed,
            "image_size": image_size,
            **params,
        }
    return writer.path
