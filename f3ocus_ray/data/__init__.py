"""Data: synthetic MedVQA-FL and multi-label sets, the on-disk format, loader, tokenizer.

Modules, one job each: ``draw`` (numpy drawing primitives), ``images`` (the nine modality
renderers), ``questions`` (attributes and question templates), ``synthetic`` (the MedVQA-FL
generator and :func:`synthesize`), ``multilabel`` (chest X-ray classification with Dirichlet
label shift), ``format`` (annotations.jsonl records, atomic writer), ``dataset`` (loader),
``baselines`` (blind VQA baselines), ``tokenizer`` (offline WordPiece).
"""

from .baselines import VQABaselines, vqa_baselines
from .dataset import CLASSIFICATION_PROMPT, ClientData, FederatedDataset, load_dataset
from .format import ANNOTATIONS, SPLITS, DataError, DatasetWriter, Record, read_annotations
from .multilabel import FINDINGS, generate_multilabel, label_shift
from .questions import QUESTION_TYPES, TYPE_PROPORTIONS, answer_vocabulary
from .synthetic import MEDVQA_FL_CLIENTS, client_sizes, generate_vqa, synthesize
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
    "VQABaselines",
    "answer_vocabulary",
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
