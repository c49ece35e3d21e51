"""A worker's view of the data: open the data set, then turn one client's split into
model-ready tensors (imports torch, through :mod:`f3ocus_ray.task`)."""

from __future__ import annotations

from f3ocus_ray.task import ClientTensors

from .dataset import FederatedDataset, load_dataset
from .format import DataError
from .generative import encode_prompt_answer
from .tokenizer import QuestionTokenizer, encode_questions, tokenizer_from_json

__all__ = ["load_client_tensors", "open_dataset"]


def open_dataset(
    path: str, image_size: int, tokenizer_json: str
) -> tuple[FederatedDataset, QuestionTokenizer]:
    """The data set at ``path`` and the tokenizer trained for it on the launching process."""
    return load_dataset(path, image_size=image_size), tokenizer_from_json(tokenizer_json)


def load_client_tensors(
    ds: FederatedDataset,
    tokenizer: QuestionTokenizer,
    client: str,
    split: str,
    max_len: int,
    answer_len: int | None = None,
) -> ClientTensors:
    """Model-ready tensors of one client's split. With `answer_len` (the generative families),
    task "generative": prompt + answer + EOS token ids and next-token targets (VQA data only)."""
    part = ds.client_split(client, split)
    if answer_len is not None:
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
