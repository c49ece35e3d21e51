"""A small offline WordPiece tokenizer for the questions, built from the data set itself.

Lower-cased, special tokens ``[PAD]=0, [UNK], [CLS], [SEP], [MASK]``, every sequence encoded
as ``[CLS] question [SEP]`` and padded to a fixed length. Saved as ``tokenizer.json`` plus a
``tokenizer_config.json``, so ``transformers.PreTrainedTokenizerFast.from_pretrained(folder)``
loads it too. The same corpus gives the same vocabulary.
"""

from __future__ import annotations

import json
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)

from .dataset import CLASSIFICATION_PROMPT
from .format import DataError

__all__ = [
    "SPECIAL_TOKENS",
    "QuestionTokenizer",
    "encode_questions",
    "load_tokenizer",
    "tokenizer_from_json",
    "tokenizer_to_json",
    "train_tokenizer",
]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"


class QuestionTokenizer:
    """A trained ``tokenizers.Tokenizer`` with the ids of its special tokens."""

    def __init__(self, backend: Tokenizer):
        self.backend = backend
        ids = [backend.token_to_id(t) for t in SPECIAL_TOKENS]
        if ids != list(range(len(SPECIAL_TOKENS))):
            raise DataError(
                f"tokenizer special tokens must be {SPECIAL_TOKENS} with ids 0-4, got {ids}"
            )
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = ids

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    def get_vocab_size(self) -> int:
        """Same as ``vocab_size`` (the ``tokenizers.Tokenizer`` spelling)."""
        return self.vocab_size

    def encode(self, questions: Sequence[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
        """See :func:`encode_questions`."""
        return encode_questions(self, questions, max_length)

    def decode(self, ids: Iterable[int]) -> str:
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=True)

    def save(self, folder: str | Path) -> Path:
        """Write ``tokenizer.json`` and ``tokenizer_config.json`` into folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.backend.save(str(folder / TOKENIZER_FILE))
        names = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "do_lower_case": True,
            **dict(zip(names, SPECIAL_TOKENS, strict=True)),
        }
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        return folder

    def to_transformers(self):
        """The same tokenizer as a ``transformers.PreTrainedTokenizerFast``."""
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast(
            tokenizer_object=Tokenizer.from_str(self.backend.to_str()),
            pad_token="[PAD]",
            unk_token="[UNK]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
        )


def train_tokenizer(
    corpus: Iterable[str], vocab_size: int = 500, pieces: Sequence[str] = ()
) -> QuestionTokenizer:
    """Build a lower-cased WordPiece tokenizer from the questions (plus the classification
    prompt, so both tasks are covered). `pieces`: sub-words added after the characters, each
    both word-initial and as a ``##`` continuation (general coverage: a new word splits into
    a few pieces rather than letters).

    The vocabulary is chosen deterministically (the ``tokenizers`` trainers break ties between
    equally frequent merges differently from run to run): the special tokens, every character
    of the corpus plus a-z and 0-9, each with its ``##`` continuation (so new words are spelt
    out rather than [UNK]), then whole words by descending frequency, ties alphabetical, up to
    ``vocab_size`` tokens in all.
    """
    normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in [*corpus, CLASSIFICATION_PROMPT]:
        counts.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for w in counts for c in w} | set(string.ascii_lowercase + string.digits))
    vocab = [*SPECIAL_TOKENS, *chars, *("##" + c for c in chars)]
    known = set(vocab)
    for p in (q for piece in pieces for q in (piece, "##" + piece)):
        if p not in known:
            known.add(p)
            vocab.append(p)
    if vocab_size < len(vocab):
        raise DataError(
            f"vocab_size {vocab_size} is too small: the corpus needs {len(vocab)} tokens for its characters and pieces"
        )
    words = sorted(
        (w for w in counts if len(w) > 1 and w not in known), key=lambda w: (-counts[w], w)
    )
    vocab += words[: vocab_size - len(vocab)]
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.add_special_tokens(list(SPECIAL_TOKENS))  # already in the vocabulary: ids stay 0-4
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[
            ("[CLS]", SPECIAL_TOKENS.index("[CLS]")),
            ("[SEP]", SPECIAL_TOKENS.index("[SEP]")),
        ],
    )
    return QuestionTokenizer(tok)


def load_tokenizer(folder: str | Path) -> QuestionTokenizer:
    """Load a tokenizer saved with :meth:`QuestionTokenizer.save`."""
    path = Path(folder) / TOKENIZER_FILE
    if not path.is_file():
        raise DataError(f"{path}: tokenizer file not found")
    try:
        return QuestionTokenizer(Tokenizer.from_file(str(path)))
    except Exception as e:  # the Rust side raises plain Exceptions
        if isinstance(e, DataError):
            raise
        raise DataError(f"{path}: cannot read tokenizer: {e}") from None


def tokenizer_to_json(tokenizer) -> str:
    """The tokenizer as one JSON string (the ``tokenizer.json`` text), to ship to workers."""
    return _backend(tokenizer).to_str()


def tokenizer_from_json(text: str) -> QuestionTokenizer:
    """Inverse of :func:`tokenizer_to_json`."""
    try:
        backend = Tokenizer.from_str(text)
    except Exception as e:  # the Rust side raises plain Exceptions
        raise DataError(f"cannot read tokenizer JSON: {e}") from None
    return QuestionTokenizer(backend)


def _backend(tokenizer) -> Tokenizer:
    if isinstance(tokenizer, QuestionTokenizer):
        return tokenizer.backend
    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)  # transformers fast tokenizers
    if isinstance(backend, Tokenizer):
        return backend
    raise TypeError(
        f"expected a QuestionTokenizer or tokenizers.Tokenizer, got {type(tokenizer).__name__}"
    )


def encode_questions(
    tokenizer, questions: Sequence[str], max_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Encode as ``[CLS] q [SEP]``, truncated (keeping [SEP]) and padded with [PAD]=0.

    Returns ``input_ids`` and ``attention_mask``, both (n, max_length) int64.
    """
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2, got {max_length}")
    backend = _backend(tokenizer)
    if backend.padding is not None or backend.truncation is not None:
        backend = Tokenizer.from_str(backend.to_str())
        backend.no_padding()
        backend.no_truncation()
    sep = backend.token_to_id("[SEP]")
    ids = np.zeros((len(questions), max_length), dtype=np.int64)
    mask = np.zeros((len(questions), max_length), dtype=np.int64)
    for i, enc in enumerate(backend.encode_batch(list(questions))):
        seq = enc.ids
        if len(seq) > max_length:
            seq = seq[: max_length - 1] + [sep]
        ids[i, : len(seq)] = seq
        mask[i, : len(seq)] = 1
    return ids, mask
