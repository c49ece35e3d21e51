"""Data: the on-disk format and its loader, the synthetic data sets, the readers of real ones.

The data contract, one job a module: ``files`` (every path checked against its folder, images
bounded before decoding), ``image_check`` (a data set's images checked once, cached), ``format``
(annotations.jsonl records, the sample a writer takes, the atomic writer), ``dataset`` (loader), ``tokenizer`` (offline WordPiece),
``baselines`` (blind baselines), ``generative`` (prompt + answer sequences of the generative
families). Beside it: ``synthetic/`` (the deterministic generators and :func:`synthesize`:
MedVQA-FL, domain gap, multi-label), ``convert/`` (readers of the real releases, and
``merge``), and a worker's view of the data, which imports torch and so is not re-exported
here: ``client_tensors`` (one client's split as tensors), ``decoded_cache`` (splits decoded
once into shared ``.npy`` files, read per batch) and ``split_lru`` (the splits a worker holds
in memory, bounded, least recently used evicted first).
"""

from .baselines import VQABaselines, blind_baselines, vqa_baselines
from .dataset import CLASSIFICATION_PROMPT, ClientData, FederatedDataset, load_dataset
from .format import (
    ANNOTATIONS,
    SPLITS,
    DataError,
    DatasetWriter,
    Record,
    Sample,
    read_annotations,
)
from .synthetic import synthesize
from .synthetic.medvqa import MEDVQA_FL_CLIENTS, client_sizes, generate_vqa
from .synthetic.multilabel import FINDINGS, generate_multilabel, label_shift
from .synthetic.questions import QUESTION_TYPES, TYPE_PROPORTIONS, answer_vocabulary
from .tokenizer import (
    QuestionTokenizer,
    encode_questions,
    load_tokenizer,
    tokenizer_from_json,
    tokenizer_to_json,
    train_tokenizer,
)

__all__ = [
    "ANNOTATIONS",
    "CLASSIFICATION_PROMPT",
    "FINDINGS",
    "MEDVQA_FL_CLIENTS",
    "QUESTION_TYPES",
    "SPLITS",
    "TYPE_PROPORTIONS",
    "ClientData",
    "DataError",
    "DatasetWriter",
    "FederatedDataset",
    "QuestionTokenizer",
    "Record",
    "Sample",
    "VQABaselines",
    "answer_vocabulary",
    "blind_baselines",
    "client_sizes",
    "encode_questions",
    "generate_multilabel",
    "generate_vqa",
    "label_shift",
    "load_dataset",
    "load_tokenizer",
    "read_annotations",
    "synthesize",
    "tokenizer_from_json",
    "tokenizer_to_json",
    "train_tokenizer",
    "vqa_baselines",
]
