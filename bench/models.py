"""What each model family costs at its tiny config on the CPU, one torch thread.

Per family (the demo's model sizes: hidden 64, 12 selectable units, 4 heads, FFN 128, 64 px
images in 8 px patches, 2 vision blocks, a 500-token vocabulary, 16 question tokens; generative
families add 4 answer tokens and the EOS): parameters, selectable units, seconds per local step
(AdamW, batch 8, every unit and the head trained) and seconds per LNTK scoring of all units
(`loss` mode, n = 8). Median of --repeats after one warm-up. Random data.

    .venv/bin/python bench/models.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from dataclasses import replace

import numpy as np
import torch
from ntk import DEMO  # bench/ntk.py, beside this script

from f3ocus_ray.fl.training import local_train
from f3ocus_ray.models import ModelSpec, build_model
from f3ocus_ray.models.families import is_generative
from f3ocus_ray.scoring import score_units
from f3ocus_ray.task import ClientTensors

FAMILIES = ("tiny-vilt", "tiny-blip", "tiny-albef", "tiny-blip2", "tiny-llava")
BATCH = 8
BASE = replace(DEMO, max_answer_length=4)  # the demo-sized ViLT of bench/ntk.py


def client(spec: ModelSpec, n: int) -> ClientTensors:
    g = torch.Generator().manual_seed(0)
    pixels = torch.rand(n, 3, spec.image_size, spec.image_size, generator=g) * 2 - 1
    q = spec.max_text_len
    if not is_generative(spec.name):
        ids = torch.randint(5, spec.vocab_size, (n, q), generator=g)
        targets = torch.randint(0, spec.num_outputs, (n,), generator=g)
        return ClientTensors(pixels, ids, torch.ones_like(ids), targets, "vqa")
    width = q + spec.max_answer_length + 1
    ids = torch.randint(5, spec.vocab_size, (n, width), generator=g)
    targets = torch.full((n, width), -100)
    targets[:, q - 1 : width - 1] = ids[:, q:]
    return ClientTensors(pixels, ids, torch.ones_like(ids), targets, "generative")


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(name: str, repeats: int) -> dict:
    spec = replace(BASE, name=name)
    model, space = build_model(spec)
    data = client(spec, BATCH)
    mask = np.ones(space.num_units, dtype=bool)

    def step() -> None:
        params = space.apply(model, mask)
        local_train(
            model, params, data, steps=1, batch_size=BATCH, lr=1e-4, weight_decay=0.0, seed=0
        )

    def score() -> None:
        score_units(model, space, data, method="lntk", mode="loss", n_samples=BATCH)

    return {
        "family": name,
        "params": sum(p.numel() for p in model.parameters()),
        "units": space.num_units,
        "unit": space.unit_names[0].rsplit(".", 1)[0] + ".*",
        "step_s": median_seconds(step, repeats),
        "lntk_s": median_seconds(score, repeats),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    rows = [measure(name, args.repeats) for name in FAMILIES]
    print(f"torch {torch.__version__}, 1 thread, batch {BATCH}, median of {args.repeats}")
    head = (
        f"{'family':<11} {'params':>9} {'units':>5}  {'a unit is':<44} {'s/step':>7} {'s/LNTK':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['family']:<11} {r['params']:>9,} {r['units']:>5}  {r['unit']:<44} "
            f"{r['step_s']:>7.3f} {r['lntk_s']:>7.3f}"
        )


if __name__ == "__main__":
    main()
