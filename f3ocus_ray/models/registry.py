"""The model families by config name: the one list (no torch: the config reads it).

| name                  | model                                   | task       | a unit is            |
|-----------------------|-----------------------------------------|------------|----------------------|
| tiny-vilt, vilt       | ViltForQuestionAnswering                | vqa        | a ViLT encoder block |
| tiny-blip, blip       | BLIP VQA: ViT + question encoder + head | vqa        | a question-encoder   |
|                       |                                         |            | block (cross-attn.)  |
| tiny-albef, albef     | ALBEF: ViT + BERT text/fusion + head    | vqa        | a BERT block (text,  |
|                       |                                         |            | then fusion)         |
| tiny-blip2, blip2     | Blip2ForConditionalGeneration (OPT)     | generative | an OPT decoder block |
| tiny-llava, llava     | LlavaForConditionalGeneration (Llama)   | generative | a Llama decoder block|

Each family is one module (`vilt.py`, `blip.py`, `albef.py`, `generative.py`) with a builder
`build_<name>(spec) -> (model, LayerSpace)`, named here as "module:function" and imported on
first build (`families.FAMILY_BUILDERS`). Adding a family: its module and one line below.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    builder: str  # "module:function" under f3ocus_ray.models, called with the ModelSpec
    real: bool = False  # loaded from a local checkpoint (model.path), else tiny: built from config
    generative: bool = False  # answers with tokens (task "generative"), else classifies
    bert_tokenized: bool = False  # real: its tokenizer.json encodes as [CLS] q [SEP], [PAD]=0
    block_biases: bool = True  # its blocks have bias parameters (unit mode `bias`)
    # real families: "module:function" building the model from a full config on torch's
    # default device, (config, spec) -> (model, LayerSpace) (the cost estimate, on meta)
    from_config: str | None = None
    # real families with a Hugging Face folder: its config.json's model_type and the
    # transformers class its weights load into (checked before a run: `checkpoint_check`)
    model_type: str | None = None
    hf_class: str | None = None


_FAMILIES = (
    Family("tiny-vilt", "vilt:build_tiny_vilt"),
    Family(
        "vilt",
        "vilt:build_real_vilt",
        real=True,
        bert_tokenized=True,
        from_config="vilt:vilt_from_config",
        model_type="vilt",
        hf_class="ViltForQuestionAnswering",
    ),
    Family("tiny-blip", "blip:build_blip"),
    Family(
        "blip",
        "blip:build_blip",
        real=True,
        bert_tokenized=True,
        from_config="blip:blip_from_config",
        model_type="blip",
        hf_class="BlipForQuestionAnswering",
    ),
    Family("tiny-albef", "albef:build_albef"),
    Family(
        "albef",
        "albef:build_albef",
        real=True,
        bert_tokenized=True,
        from_config="albef:albef_from_config",
    ),
    Family("tiny-blip2", "generative:build_blip2", generative=True),
    Family(
        "blip2",
        "generative:build_blip2",
        real=True,
        generative=True,
        from_config="generative:blip2_from_config",
        model_type="blip-2",
        hf_class="Blip2ForConditionalGeneration",
    ),
    Family("tiny-llava", "generative:build_llava", generative=True, block_biases=False),
    Family(
        "llava",
        "generative:build_llava",
        real=True,
        generative=True,
        block_biases=False,
        from_config="generative:llava_from_config",
        model_type="llava",
        hf_class="LlavaForConditionalGeneration",
    ),
)

FAMILIES: dict[str, Family] = {f.name: f for f in _FAMILIES}
MODEL_NAMES: tuple[str, ...] = tuple(FAMILIES)
REAL = frozenset(f.name for f in _FAMILIES if f.real)
TINY = frozenset(f.name for f in _FAMILIES if not f.real)
GENERATIVE = frozenset(f.name for f in _FAMILIES if f.generative)
BERT_TOKENIZED = frozenset(f.name for f in _FAMILIES if f.bert_tokenized)


def is_generative(name: str) -> bool:
    """Generative families answer with tokens (task "generative"), the others classify."""
    return name in GENERATIVE


__all__ = [
    "BERT_TOKENIZED",
    "FAMILIES",
    "GENERATIVE",
    "MODEL_NAMES",
    "REAL",
    "TINY",
    "Family",
    "is_generative",
]
