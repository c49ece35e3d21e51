"""ALBEF for VQA as classification, built from transformers' ViT and BERT components.

ALBEF (Li et al., 2021): a ViT image encoder; a BERT whose first blocks encode the question
(self-attention only) and whose last blocks fuse it with the image (self-attention,
cross-attention to the ViT's patch features, FFN); here an answer classification head
(Linear-GELU-LayerNorm-Linear) on the fused first token instead of ALBEF's answer decoder.
Built from `ViTModel`, `BertEmbeddings` and `BertLayer` (the fusion blocks with cross-attention,
their self-attention made bidirectional), so the original checkpoint's BERT keys map one to one;
the timm ViT's keys map by name, its fused qkv split into query/key/value (`albef_key_map`).

Units: all BERT blocks, text then fusion (12 for ALBEF-base: 6 + 6). Always frozen: the ViT
(unless `freeze_vision` is false). Head: the answer classifier (new, seeded); with
`train_embeddings` also the text embeddings. A real model is loaded from the original ALBEF
checkpoint file (`model.path`, a `.pth` with `{"model": state_dict}` or a bare state dict, read
with `torch.load(weights_only=True)`); its sizes are read off the tensors' shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from f3ocus_ray.models.blip import BERT_KINDS, answer_head
from f3ocus_ray.models.common import (
    TwoStage,
    finish,
    padding_mask,
    resolve_device,
    resolve_dtype,
    seeded,
)
from f3ocus_ray.models.layer_space import LayerSpace
from f3ocus_ray.models.units import UnitSite, get_unit_mode

if TYPE_CHECKING:
    from f3ocus_ray.models.spec import ModelSpec


@dataclass(frozen=True)
class AlbefSizes:
    hidden_size: int
    num_heads: int
    vision_layers: int
    vision_intermediate: int
    image_size: int
    patch_size: int
    text_layers: int
    fusion_layers: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int = 2


class Albef(TwoStage):
    """(pixel_values, input_ids, attention_mask) -> answer logits (n, num_answers)."""

    blocks_path = "blocks"
    frozen_prefixes = ("vision", "embeddings")

    def __init__(self, sizes: AlbefSizes, num_answers: int, initializer_range: float = 0.02):
        from transformers import BertConfig, ViTConfig, ViTModel
        from transformers.models.bert.modeling_bert import BertEmbeddings, BertLayer

        super().__init__()
        s = sizes
        self.sizes = s
        vit = ViTConfig(
            hidden_size=s.hidden_size,
            num_hidden_layers=s.vision_layers,
            num_attention_heads=s.num_heads,
            intermediate_size=s.vision_intermediate,
            image_size=s.image_size,
            patch_size=s.patch_size,
            layer_norm_eps=1e-6,  # timm's
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            initializer_range=initializer_range,
            qkv_bias=True,
        )
        bert = dict(
            vocab_size=s.vocab_size,
            hidden_size=s.hidden_size,
            num_attention_heads=s.num_heads,
            intermediate_size=s.intermediate_size,
            max_position_embeddings=s.max_positions,
            type_vocab_size=s.type_vocab_size,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            initializer_range=initializer_range,
        )
        text_cfg = BertConfig(**bert)
        fusion_cfg = BertConfig(**bert, is_decoder=True, add_cross_attention=True)
        for cfg in (vit, text_cfg, fusion_cfg):
            cfg._attn_implementation = "eager"
        self.vision = ViTModel(vit, add_pooling_layer=False)
        self.embeddings = BertEmbeddings(text_cfg)
        blocks = [BertLayer(text_cfg, layer_idx=i) for i in range(s.text_layers)]
        for i in range(s.text_layers, s.text_layers + s.fusion_layers):
            block = BertLayer(fusion_cfg, layer_idx=i)
            block.attention.self.is_causal = False  # ALBEF's fusion self-attention: bidirectional
            blocks.append(block)
        self.blocks = nn.ModuleList(blocks)
        self.head = answer_head(s.hidden_size, num_answers)
        _init_bert(self, initializer_range)

    def encode_frozen(
        self, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> tuple[Tensor, ...]:
        dtype = self.head[0].weight.dtype
        resize = pixel_values.shape[-1] != self.sizes.image_size
        image = self.vision(
            pixel_values=pixel_values.to(dtype), interpolate_pos_encoding=resize
        ).last_hidden_state
        hidden = self.embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids))
        return hidden, padding_mask(attention_mask, hidden.dtype), image

    def decode(self, hidden: Tensor, mask: Tensor, image: Tensor) -> Tensor:
        for i, block in enumerate(self.blocks):
            cross = image if i >= self.sizes.text_layers else None
            hidden = block(hidden, attention_mask=mask, encoder_hidden_states=cross)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        return self.head(hidden[:, 0])


def _init_bert(model: nn.Module, std: float) -> None:
    """BERT's initialisation (normal(0, std) linears and embeddings, unit LayerNorms)."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    emb = model.vision.embeddings
    nn.init.normal_(emb.cls_token, std=std)
    nn.init.normal_(emb.position_embeddings, std=std)


# -- the original checkpoint ---------------------------------------------------------------------
_VIT = {  # timm block -> transformers 5's ViTLayer (its names in this version)
    "norm1": "layernorm_before",
    "attn.proj": "attention.o_proj",
    "norm2": "layernorm_after",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
_QKV = ("attention.q_proj", "attention.k_proj", "attention.v_proj")
_SKIP = re.compile(
    r"(_m\.|_m$|^text_decoder|^text_encoder\.cls\.|queue|^vision_proj|^text_proj|"
    r"^itm_head|^temp$|position_ids$)"
)


def _bert_prefix(sd: dict[str, Tensor]) -> str:
    """ALBEF's pretraining checkpoint holds a BertForMaskedLM (text_encoder.bert.*), its VQA
    checkpoint a BertModel (text_encoder.*)."""
    return (
        "text_encoder.bert."
        if any(k.startswith("text_encoder.bert.") for k in sd)
        else "text_encoder."
    )


def albef_key_map(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """The original ALBEF state dict -> this module's (vision.*, embeddings.*, blocks.*).

    Momentum encoders (`*_m`), the answer decoder, the MLM head, the contrastive projections and
    queues and the ITM head are dropped; the timm ViT's fused `qkv` is split in three."""
    out: dict[str, Tensor] = {}
    bert = _bert_prefix(sd)
    for key, value in sd.items():
        if _SKIP.search(key):
            continue
        if key.startswith("visual_encoder."):
            k = key.removeprefix("visual_encoder.")
            if k == "cls_token":
                out["vision.embeddings.cls_token"] = value
            elif k == "pos_embed":
                out["vision.embeddings.position_embeddings"] = value
            elif k.startswith("patch_embed.proj."):
                out["vision.embeddings.patch_embeddings.projection." + k.split(".")[-1]] = value
            elif k.startswith("norm."):
                out["vision.layernorm." + k.split(".")[-1]] = value
            elif m := re.fullmatch(r"blocks\.(\d+)\.attn\.qkv\.(weight|bias)", k):
                i, kind = m.groups()
                for part, chunk in zip(_QKV, value.chunk(3, dim=0), strict=True):
                    out[f"vision.layers.{i}.{part}.{kind}"] = chunk.clone()
            elif m := re.fullmatch(r"blocks\.(\d+)\.(.+)\.(weight|bias)", k):
                i, name, kind = m.groups()
                if name not in _VIT:
                    raise KeyError(f"unknown ALBEF vision key {key!r}")
                out[f"vision.layers.{i}.{_VIT[name]}.{kind}"] = value
            else:
                raise KeyError(f"unknown ALBEF vision key {key!r}")
        elif key.startswith(bert):
            k = key.removeprefix(bert)
            if k.startswith("embeddings."):
                out[k] = value
            elif k.startswith("encoder.layer."):
                out["blocks." + k.removeprefix("encoder.layer.")] = value
            elif not k.startswith("pooler."):
                raise KeyError(f"unknown ALBEF text key {key!r}")
    return out


def albef_sizes(sd: dict[str, Tensor], num_heads: int = 12) -> AlbefSizes:
    """The architecture, read off the original checkpoint's tensor shapes; the heads (not in the
    shapes) have ALBEF's 64 dimensions when the width allows, else `num_heads`."""
    bert = _bert_prefix(sd)
    pos = sd["visual_encoder.pos_embed"]
    hidden = pos.shape[-1]
    patch = sd["visual_encoder.patch_embed.proj.weight"].shape[-1]
    side = int(round((pos.shape[1] - 1) ** 0.5))
    layers = {
        int(m.group(1))
        for k in sd
        if (m := re.match(re.escape(bert) + r"encoder\.layer\.(\d+)\.", k))
    }
    fusion = {
        int(m.group(1))
        for k in sd
        if (m := re.match(re.escape(bert) + r"encoder\.layer\.(\d+)\.crossattention", k))
    }
    vision = {int(m.group(1)) for k in sd if (m := re.match(r"visual_encoder\.blocks\.(\d+)\.", k))}
    return AlbefSizes(
        hidden_size=hidden,
        num_heads=hidden // 64 if hidden % 64 == 0 else num_heads,
        vision_layers=len(vision),
        vision_intermediate=sd["visual_encoder.blocks.0.mlp.fc1.weight"].shape[0],
        image_size=side * patch,
        patch_size=patch,
        text_layers=len(layers) - len(fusion),
        fusion_layers=len(fusion),
        intermediate_size=sd[f"{bert}encoder.layer.0.intermediate.dense.weight"].shape[0],
        vocab_size=sd[f"{bert}embeddings.word_embeddings.weight"].shape[0],
        max_positions=sd[f"{bert}embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=sd[f"{bert}embeddings.token_type_embeddings.weight"].shape[0],
    )


def load_albef_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The original checkpoint's state dict (tensors only: `weights_only=True`)."""
    ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    sd = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict) or "visual_encoder.pos_embed" not in sd:
        raise ValueError(f"{path}: not an ALBEF checkpoint (no visual_encoder.pos_embed)")
    return sd


def tiny_albef_sizes(spec: ModelSpec) -> AlbefSizes:
    text = spec.num_layers // 2  # ALBEF-base: 6 text + 6 fusion blocks
    return AlbefSizes(
        hidden_size=spec.hidden_size,
        num_heads=spec.num_heads,
        vision_layers=spec.vision_layers,
        vision_intermediate=spec.intermediate_size,
        image_size=spec.image_size,
        patch_size=spec.patch_size,
        text_layers=text,
        fusion_layers=spec.num_layers - text,
        intermediate_size=spec.intermediate_size,
        vocab_size=spec.vocab_size,
        max_positions=spec.max_text_len,
    )


def build_albef(spec: ModelSpec) -> tuple[Albef, LayerSpace]:
    device = resolve_device(spec.device)
    if spec.path is None:
        with seeded(spec.init_seed):
            model = Albef(tiny_albef_sizes(spec), spec.num_outputs, spec.initializer_range)
        dtype = torch.float32
    else:
        sd = load_albef_state_dict(spec.path)
        with seeded(spec.init_seed):  # the answer head is new
            model = Albef(albef_sizes(sd, spec.num_heads), spec.num_outputs)
        mapped = albef_key_map(sd)
        missing, unexpected = model.load_state_dict(mapped, strict=False)
        missing = [k for k in missing if not k.startswith("head.")]
        if missing or unexpected:
            raise ValueError(
                f"{spec.path}: ALBEF checkpoint does not fit: missing {missing[:3]}, "
                f"unexpected {unexpected[:3]}"
            )
        dtype = resolve_dtype(spec.dtype, device)
    model, space = assemble_albef(model, spec)
    finish(model, device, dtype)
    return model, space


def assemble_albef(model: Albef, spec: ModelSpec) -> tuple[Albef, LayerSpace]:
    """Name the head and attach the unit mode to a built ALBEF."""
    head = ("head.",) + (("vision.",) if not spec.freeze_vision else ())
    head += ("embeddings.",) if spec.train_embeddings else ()
    site = UnitSite(model.blocks_path, model.sizes.hidden_size, BERT_KINDS, head)
    return get_unit_mode(spec.unit_mode).attach(model, site, spec)


def albef_from_config(sizes: AlbefSizes, spec: ModelSpec) -> tuple[Albef, LayerSpace]:
    """The model of full `AlbefSizes` (on torch's default device: the cost estimate's meta)."""
    return assemble_albef(Albef(sizes, spec.num_outputs), spec)
