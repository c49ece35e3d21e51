"""BLIP for VQA as classification over the answers, from transformers' `BlipForQuestionAnswering`.

BLIP's image-grounded question encoder (BERT blocks with self-attention, cross-attention to the
ViT's patch features, FFN) encodes the question; a classification head (ALBEF/BLIP's VQA
classifier form: Linear-GELU-LayerNorm-Linear) reads its first token. BLIP's generative answer
decoder is not used (and not kept). Units: the question encoder's blocks (12 for blip-vqa-base).
Always frozen: the ViT (unless `freeze_vision` is false). Head: the classifier (new, seeded),
with `train_embeddings` also the text embeddings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from f3ocus_ray.models.common import (
    TwoStage,
    eager,
    finish,
    padding_mask,
    resolve_device,
    resolve_dtype,
    seeded,
)
from f3ocus_ray.models.layer_space import LayerSpace
from f3ocus_ray.models.units import UnitKinds, UnitSite, get_unit_mode

if TYPE_CHECKING:
    from f3ocus_ray.models.spec import ModelSpec

BERT_KINDS = UnitKinds(layernorm="LayerNorm", lora_targets=("query", "value"))


def answer_head(hidden: int, num_answers: int) -> nn.Sequential:
    """The VQA classifier of ALBEF/BLIP's classification variants."""
    return nn.Sequential(
        nn.Linear(hidden, 2 * hidden),
        nn.GELU(),
        nn.LayerNorm(2 * hidden),
        nn.Linear(2 * hidden, num_answers),
    )


class BlipClassifier(TwoStage):
    """(pixel_values, input_ids, attention_mask) -> answer logits (n, num_answers)."""

    blocks_path = "text.encoder.layer"
    frozen_prefixes = ("vision", "text.embeddings")

    def __init__(self, vision: nn.Module, text: nn.Module, num_answers: int):
        super().__init__()
        self.vision = vision
        self.text = text
        self.head = answer_head(text.config.hidden_size, num_answers)

    def encode_frozen(
        self, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> tuple[Tensor, ...]:
        dtype = self.head[0].weight.dtype
        image = self.vision(pixel_values=pixel_values.to(dtype)).last_hidden_state
        hidden = self.text.embeddings(input_ids=input_ids)
        return hidden, padding_mask(attention_mask, hidden.dtype), image

    def decode(self, hidden: Tensor, mask: Tensor, image: Tensor) -> Tensor:
        for block in self.text.encoder.layer:  # every image patch is attended (no image mask)
            hidden = block(hidden, encoder_hidden_states=image, attention_mask=mask)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        return self.head(hidden[:, 0])


def tiny_blip_config(spec: ModelSpec):
    from transformers import BlipConfig, BlipTextConfig, BlipVisionConfig

    return BlipConfig(
        vision_config=BlipVisionConfig(
            hidden_size=spec.hidden_size,
            intermediate_size=spec.intermediate_size,
            num_hidden_layers=spec.vision_layers,
            num_attention_heads=spec.num_heads,
            image_size=spec.image_size,
            patch_size=spec.patch_size,
            initializer_range=spec.initializer_range,
        ),
        text_config=BlipTextConfig(
            vocab_size=spec.vocab_size,
            hidden_size=spec.hidden_size,
            encoder_hidden_size=spec.hidden_size,
            intermediate_size=spec.intermediate_size,
            num_hidden_layers=spec.num_layers,
            num_attention_heads=spec.num_heads,
            max_position_embeddings=spec.max_text_len,
            pad_token_id=0,  # the project tokenizer's [PAD], [CLS], [SEP]
            bos_token_id=2,
            sep_token_id=3,
            eos_token_id=3,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            initializer_range=spec.initializer_range,
        ),
        initializer_range=spec.initializer_range,
    )


def build_blip(spec: ModelSpec) -> tuple[BlipClassifier, LayerSpace]:
    """Tiny (random, seeded by `init_seed`) or the vision model and question encoder of a local
    `BlipForQuestionAnswering` checkpoint (`spec.path`, e.g. blip-vqa-base)."""
    from transformers import BlipForQuestionAnswering

    device = resolve_device(spec.device)
    if spec.path is None:
        cfg = tiny_blip_config(spec)
        eager(cfg)
        with seeded(spec.init_seed):
            net = BlipForQuestionAnswering(cfg)
        dtype = torch.float32
    else:
        dtype = resolve_dtype(spec.dtype, device)
        net = BlipForQuestionAnswering.from_pretrained(
            spec.path, local_files_only=True, dtype=dtype, attn_implementation="eager"
        )
    model, space = assemble_blip(net, spec)
    finish(model, device, dtype)
    return model, space


def assemble_blip(net: nn.Module, spec: ModelSpec) -> tuple[BlipClassifier, LayerSpace]:
    """The vision model and question encoder of a built `BlipForQuestionAnswering` with a new
    answer head (seeded), and the unit mode attached; BLIP's answer decoder is dropped."""
    with seeded(spec.init_seed + 2):  # the new answer head
        model = BlipClassifier(net.vision_model, net.text_encoder, spec.num_outputs)
    head = ("head.",) + (("vision.",) if not spec.freeze_vision else ())
    head += ("text.embeddings.",) if spec.train_embeddings else ()
    site = UnitSite(model.blocks_path, model.text.config.hidden_size, BERT_KINDS, head)
    return get_unit_mode(spec.unit_mode).attach(model, site, spec)


def blip_from_config(cfg, spec: ModelSpec) -> tuple[BlipClassifier, LayerSpace]:
    """The model of a full `BlipConfig` (on torch's default device: the cost estimate's meta)."""
    from transformers import BlipForQuestionAnswering

    return assemble_blip(BlipForQuestionAnswering(cfg), spec)
