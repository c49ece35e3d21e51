"""A worker's view of the data: open the data set, then turn one client's split into
model-ready tensors (imports torch, through :mod:`f3ocus_ray.task`): all in memory
(:func:`load_client_tensors`), or read per batch from the decoded cache
(:mod:`f3ocus_ray.data.decoded_cache`); both encode the text with :func:`encode_split_text`.
"""

from __future__ import annotations

import numpy as np

from f3ocus_ray.task import ClientTensors

from .dataset import FederatedDataset, load_dataset
from .format import DataError, Record
from .generative import encode_prompt_answer
from .tokenizer import QuestionTokenizer, encode_questions, tokenizer_from_json

__all__ = ["encode_split_text", "load_client_tensors", "open_dataset"]


def open_dataset(
    path: str, image_size: int, tokenizer_json: str
) -> tuple[FederatedDataset, QuestionTokenizer]:
    """The data set at ``path`` and the tokenizer trained for it on the launching process."""
    return load_dataset(path, image_size=image_size), tokenizer_from_json(tokenizer_json)


def encode_split_text(
    ds: FederatedDataset,
    tokenizer: QuestionTokenizer,
    client: str,
    recs: list[Record],
    max_len: int,
    answer_len: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(input_ids, attention_mask, targets, task) of these records of one client. With
    `answer_len` (the generative families), task "generative": prompt + answer + EOS token ids
    and next-token targets (VQA data only)."""
    if answer_len is not None:
        if ds.task != "vqa":
            raise DataError(f"the generative models answer questions: {ds.task!r} data set")
        questions = [r.question for r in recs]
        answers = [r.answer for r in recs]
        ids, mask, targets = encode_prompt_answer(
            tokenizer, questions, answers, max_len, answer_len
        )
        return ids, mask, targets, "generative"
    ids, mask = encode_questions(tokenizer, ds.split_questions(client, recs), max_len)
    return ids, mask, ds.targets_of(client, recs), ds.client_task(client)


def load_client_tensors(
    ds: FederatedDataset,
    tokenizer: QuestionTokenizer,
    client: str,
    split: str,
    max_len: int,
    answer_len: int | None = None,
) -> ClientTensors:
    """Model-ready tensors of one client's split, all in memory (see `encode_split_text`)."""
    part = ds.client_split(client, split)
    recs = ds.client_records(client, split)
    ids, mask, targets, task = encode_split_text(ds, tokenizer, client, recs, max_len, answer_len)
    outputs = ds.output_range(client) if task != "generative" else None
    return ClientTensors.from_arrays(part.images, ids, mask, targets, task, outputs)
