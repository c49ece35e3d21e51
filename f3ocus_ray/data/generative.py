"""Prompt + answer token sequences for the generative model families (BLIP-2, LLaVA).

Each sample is ``[CLS] question [SEP] answer-tokens [SEP] [PAD]...``: the prompt as the
classification families see it, then the normalised answer (lower-case, stripped), then EOS
(the tokenizer's ``[SEP]``). The targets are the next tokens the logits must predict:
``targets[t] = input_ids[t + 1]`` where token t + 1 is an answer token or the EOS, and -100
(no loss) elsewhere, so the loss counts the answer tokens only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from f3ocus_ray.task import IGNORE

from .tokenizer import _backend, encode_questions


def normalise_answer(answer: str) -> str:
    return " ".join(answer.strip().lower().split())


def encode_prompt_answer(
    tokenizer,
    questions: Sequence[str],
    answers: Sequence[str],
    prompt_length: int,
    answer_length: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input_ids, attention_mask, targets), each (n, prompt_length + answer_length + 1) int64.

    The prompt is truncated as `encode_questions` does (keeping its [SEP]); the answer keeps its
    first `answer_length` tokens; the EOS always follows it."""
    if len(questions) != len(answers):
        raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
    if answer_length < 1:
        raise ValueError(f"answer_length must be >= 1, got {answer_length}")
    backend = _backend(tokenizer)
    eos = backend.token_to_id("[SEP]")
    prompt_ids, prompt_mask = encode_questions(tokenizer, questions, prompt_length)
    width = prompt_length + answer_length + 1
    n = len(questions)
    ids = np.zeros((n, width), dtype=np.int64)
    mask = np.zeros((n, width), dtype=np.int64)
    targets = np.full((n, width), IGNORE, dtype=np.int64)
    for i, answer in enumerate(answers):
        p = int(prompt_mask[i].sum())
        a = backend.encode(normalise_answer(answer), add_special_tokens=False).ids[:answer_length]
        seq = [*prompt_ids[i, :p].tolist(), *a, eos]
        ids[i, : len(seq)] = seq
        mask[i, : len(seq)] = 1
        targets[i, p - 1 : len(seq) - 1] = seq[p:]
    return ids, mask, targets
