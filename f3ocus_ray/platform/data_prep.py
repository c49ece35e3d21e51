"""Launch-side data preparation: from the data config to the facts the specs are built from.

`prepare_data` synthesises the data set when no path is given (`ensure_synthetic`, cached by
its parameters), picks the clients, checks their images once (`check_images`: a truncated,
corrupt or oversized file is refused here, before Ray starts; the verdict is cached), trains
the tokenizer and computes the blind baselines. `synthesize_from_config` is the one place a `SyntheticDataConfig`
becomes `synthesize(...)`'s arguments (the runs and `f3ocus data synth` both call it).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from f3ocus_ray.config import DataConfig, SyntheticDataConfig
from f3ocus_ray.data import (
    DataError,
    FederatedDataset,
    blind_baselines,
    load_dataset,
    synthesize,
    train_tokenizer,
)
from f3ocus_ray.data.format import DECODED_CACHE
from f3ocus_ray.data.image_check import check_images
from f3ocus_ray.data.tokenizer import tokenizer_to_json
from f3ocus_ray.errors import ConfigError

__all__ = [
    "DataFacts",
    "decoded_cache_dir",
    "ensure_synthetic",
    "prepare_data",
    "synthesize_from_config",
    "synthetic_path",
]


@dataclass(frozen=True)
class DataFacts:
    path: Path
    task: str  # "vqa" | "multilabel" | "mixed" (VQA and classification clients)
    clients: list[str]
    n_train: list[int]
    n_test: list[int]
    num_outputs: int  # answers (vqa), findings (multilabel) or both (mixed: two heads)
    output_blocks: tuple[int, ...]  # mixed: (answers, findings), one head each; else ()
    vocab_size: int
    tokenizer_json: str
    majority_score: float  # accuracy of the majority answer, or F1 of the majority label set
    # (mixed: micro-F1 of both, pooled)
    question_only_score: float | None  # accuracy of the best blind guess per question (vqa)


def synthesize_from_config(
    out_dir: str | Path,
    synthetic: SyntheticDataConfig,
    image_size: int,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write the synthetic set that `synthetic` describes, at `image_size` pixels, showing a
    progress bar on stderr."""
    return synthesize(
        out_dir,
        image_size=image_size,
        overwrite=overwrite,
        progress=progress,
        **synthetic.model_dump(),
    )


def synthetic_path(cfg: DataConfig) -> Path:
    """A cache folder keyed by everything that determines the synthetic set (not `workers`:
    the files are the same for any number), so an existing identical set is reused."""
    fields = cfg.synthetic.model_dump(exclude={"workers"})
    key = json.dumps({**fields, "image_size": cfg.image_size}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return Path(cfg.cache_dir) / f"synthetic-{cfg.synthetic.task}-{digest}"


def ensure_synthetic(cfg: DataConfig) -> Path:
    """The synthetic set `cfg` describes, generated on first use. Processes that start at once
    (a grid's trials) generate it once: the others wait on a file lock, then reuse it."""
    path = synthetic_path(cfg)
    if (path / "annotations.jsonl").is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (path / "annotations.jsonl").is_file():
            synthesize_from_config(path, cfg.synthetic, cfg.image_size)
    return path


def decoded_cache_dir(cache_dir: str | None, data_path: Path) -> str:
    """The decoded cache's folder as the workers get it: absolute (their current folder is not
    the launcher's), `cache_dir` or `.f3ocus-cache` under the data set. Refused when neither it
    nor its nearest existing parent is writable, before any worker tries."""
    folder = Path(cache_dir).expanduser().resolve() if cache_dir else data_path / DECODED_CACHE
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not (probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)):
        where = "engine.data_cache_dir" if cache_dir else f"the data set folder {data_path}"
        raise ConfigError(
            f"engine.data_cache_dir: {folder} cannot be written ({where} is read-only or not a "
            "folder); set engine.data_cache_dir to a writable folder"
        )
    return str(folder)


def prepare_data(cfg: DataConfig, answers_in_vocab: bool = False) -> DataFacts:
    """Synthesise or open the data, pick the clients, check their images, train the tokenizer
    (on the train questions; with `answers_in_vocab`, for the generative families, also on the normalised
    train answers, so that answers are whole-word tokens), compute the blind baselines."""
    path = Path(cfg.path).expanduser() if cfg.path else ensure_synthetic(cfg)
    ds = load_dataset(path, image_size=cfg.image_size)
    clients = list(ds.clients)
    if cfg.clients is not None:
        unknown = [c for c in cfg.clients if c not in clients]
        if unknown:
            raise ConfigError(
                f"data.clients: unknown client {unknown[0]!r}; the data set has {clients}"
            )
        clients = list(cfg.clients)
    chosen = set(clients)
    # the chosen clients' records only
    sub = FederatedDataset(ds.root, [r for r in ds.records if r.client in chosen], ds.image_size)
    n_train = [len(sub.client_records(c, "train")) for c in clients]
    n_test = [len(sub.client_records(c, "test")) for c in clients]
    for c, a, b in zip(clients, n_train, n_test, strict=True):
        if not a or not b:
            raise DataError(f"{path}: client {c!r} has {a} train and {b} test records")
    # a bad image is refused here, not on a worker after Ray and MLflow have started
    check_images(sub.root, sub.records, Path(cfg.cache_dir).expanduser())
    majority, question_only = blind_baselines(sub)
    corpus = sub.questions("train")
    if answers_in_vocab and ds.task == "vqa":
        # here, not at the top: data.generative imports torch, and `f3ocus data synth` needs
        # none of it
        from f3ocus_ray.data.generative import normalise_answer

        train = (r for r in sub.records if r.split == "train")
        corpus = [*corpus, *(normalise_answer(r.answer) for r in train)]
    tok = train_tokenizer(corpus, vocab_size=cfg.tokenizer_vocab_size)
    return DataFacts(
        path=path.resolve(),
        task=sub.task,
        clients=clients,
        n_train=n_train,
        n_test=n_test,
        num_outputs=ds.num_classes,  # over the whole data set, as the workers see it
        output_blocks=(len(ds.answers), len(ds.labels)) if ds.task == "mixed" else (),
        vocab_size=tok.get_vocab_size(),
        tokenizer_json=tokenizer_to_json(tok),
        majority_score=majority,
        question_only_score=question_only,
    )
