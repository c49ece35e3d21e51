"""The paper's VLMs at their published sizes, as full configs (no weights; nothing downloaded).

Each is written out from its release's config (the Hugging Face folder named in `source`; ALBEF
from its paper and `configs/VQA.yaml`), so `f3ocus cost` can build it on the meta device. The
sizes that matter for the cost are the ones here: hidden width, blocks, heads, FFN width,
vocabulary, image size and patch, and the answer head's classes (VQAv2's 3,129 answers for the
classifying families).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

VQA_ANSWERS = 3129  # the VQAv2 answer list of ViLT/BLIP/ALBEF's VQA heads


@dataclass(frozen=True)
class Published:
    key: str  # the name `f3ocus cost --family` takes (a real family of the registry)
    family: str
    title: str
    source: str  # where the sizes come from
    config: Callable[[], Any]  # the full config: a transformers config (ALBEF: AlbefSizes)
    answers: int = VQA_ANSWERS  # classifying families: the head's classes


def vilt_b32():
    from transformers import ViltConfig

    return ViltConfig(num_labels=VQA_ANSWERS)  # the defaults are ViLT-B/32's


def blip_base():
    from transformers import BlipConfig

    return BlipConfig()  # the defaults are blip-vqa-base's (ViT-B/16 at 384, BERT-base)


def albef_base():
    from f3ocus_ray.models.albef import AlbefSizes

    return AlbefSizes(  # ViT-B/16 (384 for VQA) + BERT-base: 6 text and 6 fusion blocks
        hidden_size=768,
        num_heads=12,
        vision_layers=12,
        vision_intermediate=3072,
        image_size=384,
        patch_size=16,
        text_layers=6,
        fusion_layers=6,
        intermediate_size=3072,
        vocab_size=30522,
        max_positions=512,
    )


def blip2_opt_2_7b():
    from transformers import Blip2Config, Blip2QFormerConfig, Blip2VisionConfig, OPTConfig

    return Blip2Config(
        vision_config=Blip2VisionConfig(),  # the defaults are EVA ViT-g/14 at 224 (39 blocks)
        qformer_config=Blip2QFormerConfig(),  # BERT-base sized, cross-attention every 2 blocks
        text_config=OPTConfig(
            vocab_size=50272,
            hidden_size=2560,
            word_embed_proj_dim=2560,
            ffn_dim=10240,
            num_hidden_layers=32,
            num_attention_heads=32,
            max_position_embeddings=2048,
        ),
        num_query_tokens=32,
    )


def llava_1_5_7b():
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    return LlavaConfig(
        vision_config=CLIPVisionConfig(  # CLIP ViT-L/14 at 336
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=336,
            patch_size=14,
            projection_dim=768,
        ),
        text_config=LlamaConfig(  # Vicuna-7B v1.5 (Llama-2-7B)
            vocab_size=32064,
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            max_position_embeddings=4096,
            rms_norm_eps=1e-5,
        ),
        image_token_index=32000,
        image_seq_length=576,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )


PUBLISHED: dict[str, Published] = {
    p.key: p
    for p in (
        Published("vilt", "vilt", "ViLT-B/32", "dandelin/vilt-b32-finetuned-vqa", vilt_b32),
        Published("albef", "albef", "ALBEF-base", "ALBEF (Li et al. 2021), VQA", albef_base),
        Published("blip", "blip", "BLIP-base", "Salesforce/blip-vqa-base", blip_base),
        Published("blip2", "blip2", "BLIP-2 OPT-2.7B", "Salesforce/blip2-opt-2.7b", blip2_opt_2_7b),
        Published("llava", "llava", "LLaVA-1.5-7B", "llava-hf/llava-1.5-7b-hf", llava_1_5_7b),
    )
}

# The paper's Table 2 (Task 1, ViLT): F3OCUS (4 adapters) against full fine-tuning.
PAPER_TABLE2 = {
    "model": "vilt",
    "f3ocus_mbit": 9.7,
    "f3ocus_params": 0.30e6,
    "full_mbit": 3915.2,
    "full_params": 122.35e6,
}
