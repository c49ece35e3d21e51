"""Question types, per-modality attributes and question templates of synthetic MedVQA-FL.

Every synthetic image is described by a few categorical *attributes* (its finding, the
finding's severity and position, the background tissue, ...). The image renderer draws them
and a question asks about exactly one of them, so the answer is always visible in the image.
Question types follow the paper's mix: modality ~10%, anatomy ~20%, diagnosis ~39%,
grading ~1%, tissue ~20%, other attributes ~10%.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "MODALITY_SPECS",
    "QUESTION_TYPES",
    "TYPE_PROPORTIONS",
    "Ask",
    "ModalitySpec",
    "answer_vocabulary",
    "make_question",
    "sample_attributes",
]

QUESTION_TYPES = ("modality", "anatomy", "diagnosis", "grading", "tissue", "other")
TYPE_PROPORTIONS = {
    "modality": 0.10,
    "anatomy": 0.20,
    "diagnosis": 0.39,
    "grading": 0.01,
    "tissue": 0.20,
    "other": 0.10,
}

_MODALITY_Q = (
    "what imaging modality is used?",
    "what modality is shown in this image?",
    "how was this image acquired?",
)
_DIAGNOSIS_Q = "what is the diagnosis?"
_SEVERITY_Q = ("how severe is the abnormality?",)
_SIDE_Q = ("on which side is the abnormality?",)
_SIDES = ("left", "right")
_SEVERITY = ("mild", "severe")


@dataclass(frozen=True)
class Ask:
    """How one question type is asked: the attribute it reads and its phrasings."""

    attribute: str
    templates: tuple[str, ...]
    needs_lesion: bool = False


@dataclass(frozen=True)
class ModalitySpec:
    """Attribute domains and questions of one modality (one federated client).

    ``attributes`` maps names to their possible values (sampled uniformly and independently;
    the finding "normal" draws no lesion); questions whose ``Ask.needs_lesion`` is set force a
    finding from ``lesion_findings`` (default: every finding but "normal");
    ``fixed`` overrides attributes for a finding (an effusion always lies low).
    """

    name: str
    modality: str
    attributes: dict[str, tuple[str, ...]]
    asks: dict[str, Ask]
    lesion_findings: tuple[str, ...] = ()
    fixed: dict[str, dict[str, str]] = field(default_factory=dict)

    def answers(self) -> set[str]:
        """Every answer a question about this modality can have."""
        out = {self.modality}
        for ask in self.asks.values():
            out.update(self.attributes[ask.attribute])
        return out


def _spec(name, modality, attributes, asks, **kw) -> ModalitySpec:
    attributes = {"modality": (modality,), **attributes}
    asks = {"modality": Ask("modality", _MODALITY_Q), **asks}
    if "lesion_findings" not in kw:
        kw["lesion_findings"] = tuple(f for f in attributes["finding"] if f != "normal")
    return ModalitySpec(name, modality, attributes, asks, **kw)


MODALITY_SPECS: dict[str, ModalitySpec] = {
    s.name: s
    for s in (
        _spec(
            "chest_xray",
            "x-ray",
            {
                "finding": ("normal", "pneumonia", "effusion", "nodule"),
                "zone": ("upper", "lower"),
                "severity": _SEVERITY,
                "tissue": ("homogeneous", "heterogeneous"),
                "side": _SIDES,
            },
            {
                "anatomy": Ask(
                    "zone",
                    (
                        "which part of the lung is affected?",
                        "is the abnormality in the upper or lower lung?",
                    ),
                    True,
                ),
                "diagnosis": Ask(
                    "finding", ("what abnormality is seen in this chest x-ray?", _DIAGNOSIS_Q)
                ),
                "grading": Ask("severity", _SEVERITY_Q, True),
                "tissue": Ask("tissue", ("what is the texture of the lung tissue?",)),
                "other": Ask("side", _SIDE_Q, True),
            },
            fixed={"effusion": {"zone": "lower"}},
        ),
        _spec(
            "oct",
            "oct",
            {
                "finding": ("normal", "cnv", "dme", "drusen"),
                "anatomy": ("macula", "optic disc"),
                "severity": _SEVERITY,
                "tissue": ("hyperreflective", "hyporeflective"),
                "side": _SIDES,
            },
            {
                "anatomy": Ask("anatomy", ("which region of the retina is scanned?",)),
                "diagnosis": Ask(
                    "finding", ("what abnormality is seen in this oct scan?", _DIAGNOSIS_Q)
                ),
                "grading": Ask("severity", _SEVERITY_Q, True),
                "tissue": Ask("tissue", ("what is the reflectivity of the retinal layers?",)),
                "other": Ask("side", _SIDE_Q, True),
            },
        ),
        _spec(
            "colon_pathology",
            "pathology",
            {
                "finding": ("normal", "adenocarcinoma", "necrosis"),
                "anatomy": ("colon",),
                "severity": _SEVERITY,
                "tissue": ("adipose", "mucosa", "stroma"),
                "side": _SIDES,
            },
            {
                "anatomy": Ask("anatomy", ("which organ is this tissue from?",)),
                "diagnosis": Ask(
                    "finding", ("what abnormality is seen in this tissue?", _DIAGNOSIS_Q)
                ),
                "grading": Ask("severity", _SEVERITY_Q, True),
                "tissue": Ask("tissue", ("what type of tissue is shown?",)),
                "other": Ask("side", _SIDE_Q, True),
            },
        ),
        _spec(
            "dermatoscope",
            "dermoscopy",
            {
                "finding": ("nevus", "melanoma", "keratosis"),
                "anatomy": ("skin",),
                "severity": _SEVERITY,
                "tissue": ("hairy", "smooth"),
                "side": _SIDES,
            },
            {
                "anatomy": Ask("anatomy", ("which organ is imaged?",)),
                "diagnosis": Ask("finding", ("what type of skin lesion is this?", _DIAGNOSIS_Q)),
                "grading": Ask("severity", _SEVERITY_Q),
                "tissue": Ask("tissue", ("what does the surrounding skin look like?",)),
                "other": Ask("side", _SIDE_Q),
            },
        ),
        _spec(
            "fundus",
            "fundus photography",
            {
                "finding": ("normal", "diabetic retinopathy", "glaucoma"),
                "anatomy": _SIDES,
                "severity": ("mild", "moderate", "severe"),
                "tissue": ("homogeneous", "heterogeneous"),
                "position": ("upper", "lower"),
            },
            {
                "anatomy": Ask("anatomy", ("which eye is shown?",)),
                "diagnosis": Ask(
                    "finding", ("what abnormality is seen in this fundus image?", _DIAGNOSIS_Q)
                ),
                "grading": Ask("severity", ("what is the grade of diabetic retinopathy?",), True),
                "tissue": Ask("tissue", ("what is the pattern of the fundus background?",)),
                "other": Ask("position", ("where are the lesions located?",), True),
            },
            lesion_findings=("diabetic retinopathy",),
        ),
        _spec(
            "ultrasound",
            "ultrasound",
            {
                "finding": ("normal", "benign", "malignant"),
                "anatomy": ("breast",),
                "severity": _SEVERITY,
                "tissue": ("homogeneous", "heterogeneous"),
                "side": _SIDES,
            },
            {
                "anatomy": Ask("anatomy", ("which organ is imaged?",)),
                "diagnosis": Ask(
                    "finding", ("what abnormality is seen in this ultrasound?", _DIAGNOSIS_Q)
                ),
                "grading": Ask("severity", _SEVERITY_Q, True),
                "tissue": Ask("tissue", ("what is the echotexture of the tissue?",)),
                "other": Ask("side", _SIDE_Q, True),
            },
        ),
        _spec(
            "blood_microscope",
            "microscopy",
            {
                "finding": ("normal", "malaria", "sickle cell"),
                "anatomy": ("blood",),
                "severity": _SEVERITY,
                "tissue": ("neutrophil", "lymphocyte", "eosinophil"),
                "side": _SIDES,
            },
            {
                "anatomy": Ask("anatomy", ("what body fluid is shown?",)),
                "diagnosis": Ask(
                    "finding", ("what abnormality is seen in the red blood cells?", _DIAGNOSIS_Q)
                ),
                "grading": Ask("severity", _SEVERITY_Q, True),
                "tissue": Ask("tissue", ("what type of white blood cell is shown?",)),
                "other": Ask("side", ("where is the white blood cell located?",)),
            },
        ),
        _spec(
            "kidney_cortex",
            "microscopy",
            {
                "finding": ("normal", "fibrosis", "inflammation"),
                "anatomy": ("kidney",),
                "severity": _SEVERITY,
                "tissue": ("proximal tubule", "distal tubule", "glomerulus"),
                "side": _SIDES,
            },
            {
                "anatomy": Ask("anatomy", ("which organ is this tissue from?",)),
                "diagnosis": Ask(
                    "finding", ("what abnormality is seen in this tissue?", _DIAGNOSIS_Q)
                ),
                "grading": Ask("severity", _SEVERITY_Q, True),
                "tissue": Ask("tissue", ("what structure is shown in this tissue?",)),
                "other": Ask("side", _SIDE_Q, True),
            },
        ),
        _spec(
            "abdominal_ct",
            "ct",
            {
                "finding": ("normal", "cyst", "tumor"),
                "organ": ("liver", "spleen", "kidney"),
                "severity": _SEVERITY,
                "tissue": ("homogeneous", "heterogeneous"),
                "contrast": ("yes", "no"),
            },
            {
                "anatomy": Ask("organ", ("which organ contains the lesion?",), True),
                "diagnosis": Ask(
                    "finding", ("what abnormality is seen in this ct scan?", _DIAGNOSIS_Q)
                ),
                "grading": Ask("severity", _SEVERITY_Q, True),
                "tissue": Ask("tissue", ("what is the texture of the liver?",)),
                "other": Ask("contrast", ("was contrast used?",)),
            },
        ),
    )
}


def _pick(rng: np.random.Generator, values: tuple[str, ...]) -> str:
    return values[int(rng.integers(len(values)))]


def sample_attributes(spec: ModalitySpec, qtype: str, rng: np.random.Generator) -> dict[str, str]:
    """Draw one image's attributes; a question needing a lesion forces an abnormal finding."""
    attrs = {name: _pick(rng, values) for name, values in spec.attributes.items()}
    if spec.asks[qtype].needs_lesion:
        attrs["finding"] = _pick(rng, spec.lesion_findings)
    attrs.update(spec.fixed.get(attrs["finding"], {}))
    return attrs


def make_question(
    spec: ModalitySpec, qtype: str, attrs: dict[str, str], rng: np.random.Generator
) -> tuple[str, str]:
    """A (question, answer) pair of the given type about an image with these attributes."""
    ask = spec.asks[qtype]
    return _pick(rng, ask.templates), attrs[ask.attribute]


def answer_vocabulary() -> list[str]:
    """Sorted closed answer vocabulary over all modalities."""
    out: set[str] = set()
    for spec in MODALITY_SPECS.values():
        out |= spec.answers()
    return sorted(out)
