"""From the on-disk data set to what the engine needs.

On the launching process: `prepare_data` (synthesise when no path is given, pick the clients,
train the tokenizer, compute the majority baseline). On the workers: `open_dataset` and
`load_client_tensors`, which turn one client's split into model-ready tensors.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from f3ocus_ray.config import DataConfig
from f3ocus_ray.data import (
    DataError,
    FederatedDataset,
    encode_questions,
    load_dataset,
    synthesize,
    train_tokenizer,
    vqa_baselines,
)
from f3ocus_ray.data.tokenizer import tokenizer_from_json, tokenizer_to_json
from f3ocus_ray.errors import ConfigError
from f3ocus_ray.task import ClientTensors, micro_f1


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


def synthetic_path(cfg: DataConfig) -> Path:
    """A cache folder keyed by everything that determines the synthetic set."""
    key = json.dumps({**cfg.synthetic.model_dump(), "image_size": cfg.image_size}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return Path(cfg.cache_dir) / f"synthetic-{cfg.synthetic.task}-{digest}"


def ensure_synthetic(cfg: DataConfig) -> Path:
    path = synthetic_path(cfg)
    if not (path / "annotations.jsonl").is_file():
        s = cfg.synthetic
        synthesize(
            path,
            task=s.task,
            seed=s.seed,
            scale=s.scale,
            min_per_client=s.min_per_client,
            image_size=cfg.image_size,
            n_clients=s.n_clients,
            alpha=s.alpha,
            samples_per_client=s.samples_per_client,
        )
    return path


def _multilabel_majority_counts(ds: FederatedDataset) -> tuple[int, int, int]:
    """(tp, fp, fn) on test of always predicting the labels present in most train records."""
    train = [r for r in ds.records if r.split == "train"]
    common = {lab for lab in ds.labels if sum(lab in r.labels for r in train) > len(train) / 2}
    tp = fp = fn = 0
    for r in ds.records:
        if r.split == "test":
            truth = set(r.labels)
            tp, fp, fn = (
                tp + len(truth & common),
                fp + len(common - truth),
                fn + len(truth - common),
            )
    return tp, fp, fn


def _blind_baselines(ds: FederatedDataset) -> tuple[float, float | None]:
    """(majority score, question-only score or None) of the chosen clients' records.

    Mixed data sets pool the counts as evaluation does: a VQA answer is one prediction and one
    truth, so its correct answers are true positives and its wrong ones a false positive and a
    false negative each; the question-only baseline is VQA's alone (None when mixed)."""
    if ds.task == "vqa":
        blind = vqa_baselines(ds)
        return blind.majority, blind.question_only
    if ds.task == "multilabel":
        return micro_f1(*_multilabel_majority_counts(ds)), None
    by_task = {
        t: FederatedDataset(ds.root, [r for r in ds.records if r.task == t], ds.image_size)
        for t in ("vqa", "multilabel")
    }
    tp, fp, fn = _multilabel_majority_counts(by_task["multilabel"])
    n_vqa = sum(r.split == "test" for r in by_task["vqa"].records)
    correct = vqa_baselines(by_task["vqa"]).majority * n_vqa
    return micro_f1(tp + correct, fp + n_vqa - correct, fn + n_vqa - correct), None


def prepare_data(cfg: DataConfig, answers_in_vocab: bool = False) -> DataFacts:
    """Synthesise or open the data, pick the clients, train the tokenizer (on the train
    questions; with `answers_in_vocab`, for the generative families, also on the normalised
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
    # the chosen clients' records only: no image is decoded here
    sub = FederatedDataset(ds.root, [r for r in ds.records if r.client in chosen], ds.image_size)
    n_train = [len(sub.client_records(c, "train")) for c in clients]
    n_test = [len(sub.client_records(c, "test")) for c in clients]
    for c, a, b in zip(clients, n_train, n_test, strict=True):
        if not a or not b:
            raise DataError(f"{path}: client {c!r} has {a} train and {b} test records")
    majority, question_only = _blind_baselines(sub)
    corpus = sub.questions("train")
    if answers_in_vocab and ds.task == "vqa":
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


def open_dataset(path: str, image_size: int, tokenizer_json: str) -> tuple[Any, Any]:
    return load_dataset(path, image_size=image_size), tokenizer_from_json(tokenizer_json)


def load_client_tensors(
    ds: Any,
    tokenizer: Any,
    client: str,
    split: str,
    max_len: int,
    answer_len: int | None = None,
) -> ClientTensors:
    """Model-ready tensors of one client's split. With `answer_len` (the generative families),
    task "generative": prompt + answer + EOS token ids and next-token targets (VQA data only)."""
    part = ds.client_split(client, split)
    if answer_len is not None:
        from f3ocus_ray.data.generative import encode_prompt_answer

        if ds.task != "vqa":
            raise DataError(f"the generative models answer questions: {ds.task!r} data set")
        answers = [ds.answers[i] for i in part.answer_ids]
        ids, mask, targets = encode_prompt_answer(
            tokenizer, part.questions, answers, max_len, answer_len
        )
        return ClientTensors.from_arrays(part.images, ids, mask, targets, "generative")
    ids, mask = encode_questions(tokenizer, part.questions, max_len)
    return ClientTensors.from_arrays(
        part.images, ids, mask, part.targets, ds.client_task(client), ds.output_range(client)
    )
