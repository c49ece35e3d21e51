"""`f3ocus pretrain CONFIG --out DIR`: pretrain a tiny family centrally on the general-domain
synthetic corpus and write a Hugging Face-style folder that `model.path` loads as its real
family (config.json, model.safetensors, tokenizer.json, recipe.json with the content hash).

Deterministic: seeded, fixed torch threads, the corpus and tokenizer are functions of the
config. Logs a progress line every `training.log_every` steps and the metrics to MLflow. The
folder appears whole or not at all (written beside DIR, then renamed).
"""

from __future__ import annotations

import importlib
import logging
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from f3ocus_ray.config import flatten
from f3ocus_ray.errors import ConfigError
from f3ocus_ray.models.pretraining import PRETRAINERS
from f3ocus_ray.models.recipe import write_recipe
from f3ocus_ray.platform.pretrain_config import PretrainConfig

log = logging.getLogger("f3ocus")


def check_out(out: str | Path) -> Path:
    """DIR must not exist or be an empty folder (never overwrite a checkpoint)."""
    p = Path(out)
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise ConfigError(f"--out {p}: exists and is not an empty folder")
    return p


class _Data:
    """The corpus as tensors: images, every question (3 per image) and every caption."""

    def __init__(self, cfg: PretrainConfig):
        import torch

        from f3ocus_ray.data.pretrain_corpus import answer_vocabulary, generate_corpus
        from f3ocus_ray.data.pretrain_tokenizer import train_pretrain_tokenizer

        c = cfg.corpus
        corpus = generate_corpus(c.images, c.image_size, c.seed)
        self.tokenizer = train_pretrain_tokenizer(corpus.texts(), cfg.tokenizer.vocab_size)
        self.answers = answer_vocabulary()
        index = {a: i for i, a in enumerate(self.answers)}
        n_q = len(corpus.qa[0])
        L = cfg.model.max_text_len
        pixels = torch.from_numpy(corpus.images).permute(0, 3, 1, 2)
        self.pixels = (pixels.float() / 127.5 - 1.0).contiguous()  # as task.ClientTensors
        q_ids, q_mask = self.tokenizer.encode([q for qa in corpus.qa for q, _ in qa], L)
        self.q_ids = torch.from_numpy(q_ids).view(c.images, n_q, L)
        self.q_mask = torch.from_numpy(q_mask).view(c.images, n_q, L)
        self.q_ans = torch.tensor([[index[a] for _, a in qa] for qa in corpus.qa])
        c_ids, c_mask = self.tokenizer.encode(corpus.captions, L)
        self.c_ids, self.c_mask = torch.from_numpy(c_ids), torch.from_numpy(c_mask)
        self.n_train = c.images - c.held_out

    def batch(self, idx, gen, cfg: PretrainConfig) -> dict[str, Any]:
        import torch

        k = torch.randint(self.q_ids.shape[1], (len(idx),), generator=gen)
        # half the captions are another image's (ITM negatives): a shift within the batch
        matched = (torch.rand(len(idx), generator=gen) < 0.5).long()
        shift = torch.roll(idx, 1)
        cap = torch.where(matched.bool(), idx, shift)
        objectives = cfg.training.objectives
        q_ids, q_mask = _trim(self.q_ids[idx, k], self.q_mask[idx, k])
        out: dict[str, Any] = {
            "pixels": self.pixels[idx],
            "question_ids": q_ids,
            "question_mask": q_mask,
            "answers": self.q_ans[idx, k],
            "objectives": objectives,
            "mlm_probability": cfg.training.mlm_probability,
        }
        if "mlm" in objectives or "itm" in objectives:
            c_ids, c_mask = _trim(self.c_ids[cap], self.c_mask[cap])
            out |= {
                "caption_ids": c_ids,
                "caption_mask": c_mask,
                # MLM-only training: every caption its own image's
                "matched": matched if "itm" in objectives else torch.ones_like(matched),
            }
        return out


def _trim(ids, mask):
    """Drop the padding columns no row of the batch uses (shorter sequences: faster steps)."""
    n = int(mask.sum(1).max())
    return ids[:, :n], mask[:, :n]


def _build(cfg: PretrainConfig, vocab_size: int, num_answers: int):
    from f3ocus_ray.models.spec import ModelSpec

    m = cfg.model
    spec = ModelSpec(
        name=cfg.family,
        hidden_size=m.hidden_size,
        num_layers=m.num_layers,
        num_heads=m.num_heads,
        intermediate_size=m.intermediate_size,
        patch_size=m.patch_size,
        image_size=cfg.corpus.image_size,
        vocab_size=vocab_size,
        max_text_len=m.max_text_len,
        num_outputs=num_answers,
        init_seed=cfg.seed,
        initializer_range=m.initializer_range,
    )
    module, cls = PRETRAINERS[cfg.family].target.split(":")
    return getattr(importlib.import_module(f"f3ocus_ray.models.{module}"), cls)(spec, num_answers)


def _lr_at(step: int, cfg: PretrainConfig) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    t = cfg.training
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    frac = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
    return t.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def _held_out_accuracy(model, data: _Data) -> float:
    import torch

    n = data.pixels.shape[0]
    correct = total = 0
    with torch.no_grad():
        for start in range(data.n_train, n, 64):
            idx = torch.arange(start, min(start + 64, n))
            for k in range(data.q_ids.shape[1]):
                pred = model.answer(data.pixels[idx], data.q_ids[idx, k], data.q_mask[idx, k])
                correct += int((pred == data.q_ans[idx, k]).sum())
                total += len(idx)
    return correct / total


def pretrain(cfg: PretrainConfig, out: str | Path) -> dict[str, Any]:
    """Pretrain `cfg.family` and write the folder at `out`; returns its recipe. Torch's thread
    count, deterministic mode and global generator are set for the run and restored after."""
    import torch

    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        with torch.random.fork_rng(devices=[]):
            return _pretrain(cfg, out)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(strict)


def _pretrain(cfg: PretrainConfig, out: str | Path) -> dict[str, Any]:
    import torch

    from f3ocus_ray.models.common import seeded
    from f3ocus_ray.platform.tracking import RunTracker

    out = check_out(out)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    start = time.monotonic()
    t = cfg.training
    data = _Data(cfg)
    with seeded(cfg.seed):
        model = _build(cfg, data.tokenizer.vocab_size, len(data.answers))
    n_params = sum(p.numel() for p in model.net.parameters())
    log.info(
        "pretrain %s: %d images, vocabulary %d, %d answers, %d parameters, %d steps",
        cfg.family, cfg.corpus.images, data.tokenizer.vocab_size, len(data.answers), n_params,
        t.steps,
    )  # fmt: skip
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    rest = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": t.weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=t.lr,
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # ViLT draws its image patches from the global generator
    params = {"family": cfg.family, "out": str(out), **flatten(cfg.model_dump(mode="json"))}
    with RunTracker(cfg.tracking.uri, cfg.tracking.experiment, cfg.name, params) as tracker:
        model.train()
        sums: dict[str, float] = {}
        for step in range(t.steps):
            idx = torch.randint(data.n_train, (t.batch_size,), generator=gen)
            losses = model.losses(data.batch(idx, gen, cfg), gen)
            loss = sum(v for k, v in losses.items() if k in t.objectives)
            if not torch.isfinite(loss):
                raise ConfigError(f"training.lr: the loss became {float(loss)} at step {step + 1}")
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            if (step + 1) % t.log_every == 0 or step + 1 == t.steps:
                n = (step % t.log_every) + 1
                means = {f"train_{k}": v / n for k, v in sums.items()}
                tracker.log_metrics({**means, "lr": _lr_at(step, cfg)}, step + 1)
                shown = " ".join(f"{k[6:]} {v:.3f}" for k, v in sorted(means.items()))
                log.info("pretrain step %d/%d: %s (%.0f s)", step + 1, t.steps, shown,
                         time.monotonic() - start)  # fmt: skip
                sums = {}
        model.eval()
        accuracy = _held_out_accuracy(model, data)
        wall = time.monotonic() - start
        tracker.log_metrics({"held_out_vqa_accuracy": accuracy, "wall_s": wall}, t.steps)
        recipe = _write(model, data, cfg, out, accuracy, wall, n_params)
        tracker.log_json(recipe, "recipe.json")
        tracker.set_tags({"content_hash": recipe["content_hash"]})
    log.info("pretrain: held-out VQA accuracy %.3f; wrote %s (content hash %s, %.0f s)",
             accuracy, out, recipe["content_hash"][:12], wall)  # fmt: skip
    return recipe


def _write(model, data: _Data, cfg, out: Path, accuracy: float, wall: float, n_params: int):
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        model.save(tmp)
        data.tokenizer.save(tmp)
        recipe = write_recipe(
            tmp,
            {
                "family": cfg.family,
                "loads_as": PRETRAINERS[cfg.family].loads_as,
                "config": cfg.model_dump(mode="json"),
                "answers": data.answers,
                "parameters": n_params,
                "held_out_vqa_accuracy": round(accuracy, 4),
                "wall_time_s": round(wall, 1),
            },
        )
        if out.is_dir():  # an empty folder (check_out): replace it
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return recipe
