"""Generative VLMs: BLIP-2 (`Blip2ForConditionalGeneration`) and LLaVA-1.5
(`LlavaForConditionalGeneration`), tiny from config or real from a local checkpoint.

The wrapper's `input_ids` are prompt + answer + EOS token ids (task "generative", see
`f3ocus_ray.data.generative`); it puts the image features in front of their embeddings, runs the
language model with a causal mask and returns the next-token logits of the text positions only,
(n, T, V): logits[:, t] predicts token t + 1. This is what `Blip2ForConditionalGeneration` and
`LlavaForConditionalGeneration` compute with `num_query_tokens` / `image_seq_length` image
placeholder tokens in front of the prompt (the test checks it against their `generate()`), done
here by concatenation so that no image token id and no data-dependent `masked_scatter` is needed.

Units are the language model's decoder blocks (32 for LLaVA-1.5-7B, 32 for BLIP-2 OPT-2.7b).
Always frozen: the vision tower (and BLIP-2's Q-Former with its query tokens) unless
`freeze_vision` is false, then they join the head. The head, trained by every client, is the
vision-to-language projection; with `train_embeddings` also the language model's token
embeddings, final norm and output layer (for random weights).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from f3ocus_ray.models.common import (
    TwoStage,
    causal_mask,
    eager,
    finish,
    resolve_device,
    resolve_dtype,
    seeded,
)
from f3ocus_ray.models.layer_space import LayerSpace
from f3ocus_ray.models.units import UnitKinds, UnitSite, get_unit_mode

if TYPE_CHECKING:
    from f3ocus_ray.models.spec import ModelSpec

OPT_KINDS = UnitKinds(layernorm="layer_norm", lora_targets=("q_proj", "v_proj"))
LLAMA_KINDS = UnitKinds(layernorm="layernorm", lora_targets=("q_proj", "v_proj"))


class GenerativeVLM(TwoStage):
    """(pixel_values, input_ids, attention_mask) -> next-token logits (n, T, V) of the text."""

    blocks_path: str
    bridge_path: str  # the vision-to-language projection (head)
    vision_paths: tuple[str, ...]  # frozen unless freeze_vision is false
    lm_extra_paths: tuple[str, ...]  # embeddings, final norm, output layer (train_embeddings)

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        # what encode_frozen reads: the vision side and the token embeddings
        self.frozen_prefixes = (*self.vision_paths, self.lm_extra_paths[0])

    # -- family specifics ----------------------------------------------------------------
    def image_hidden(self, pixel_values: Tensor) -> Tensor:
        """The frozen vision side's output, (n, P, d) (before the projection)."""
        raise NotImplementedError

    def project(self, hidden: Tensor) -> Tensor:
        return self.net.get_submodule(self.bridge_path)(hidden)

    @property
    def lm_base(self) -> nn.Module:
        raise NotImplementedError

    @property
    def lm_head(self) -> nn.Module:
        raise NotImplementedError

    @property
    def blocks(self) -> nn.ModuleList:
        return self.get_submodule(self.blocks_path)

    # -- the two stages ------------------------------------------------------------------
    def encode_frozen(
        self, pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> tuple[Tensor, ...]:
        image = self.image_hidden(pixel_values.to(self.dtype))
        text = self.lm_base.get_input_embeddings()(input_ids)
        n, p = image.shape[:2]
        full = torch.cat([attention_mask.new_ones(n, p), attention_mask], dim=1)
        positions = (full.cumsum(1) - 1).clamp(min=0)
        return image, text, causal_mask(full, text.dtype), positions

    def decode(self, image: Tensor, text: Tensor, mask: Tensor, positions: Tensor) -> Tensor:
        embeds = torch.cat([self.project(image).to(text.dtype), text], dim=1)
        hidden = self.lm_base(
            inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=False
        ).last_hidden_state
        return self.lm_head(hidden[:, image.shape[1] :])

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def num_image_tokens(self) -> int:
        raise NotImplementedError


class Blip2VQA(GenerativeVLM):
    blocks_path = "net.language_model.model.decoder.layers"
    bridge_path = "language_projection"
    vision_paths = ("net.vision_model", "net.qformer", "net.query_tokens")
    lm_extra_paths = (
        "net.language_model.model.decoder.embed_tokens",
        "net.language_model.model.decoder.embed_positions",
        "net.language_model.model.decoder.final_layer_norm",
        "net.language_model.lm_head",
    )

    def image_hidden(self, pixel_values: Tensor) -> Tensor:
        net = self.net
        image = net.vision_model(pixel_values=pixel_values).last_hidden_state
        queries = net.query_tokens.expand(image.shape[0], -1, -1)
        out = net.qformer(
            query_embeds=queries,
            encoder_hidden_states=image,
            encoder_attention_mask=torch.ones(
                image.shape[:2], dtype=torch.long, device=image.device
            ),
        ).last_hidden_state
        return out.to(self.net.language_projection.weight.dtype)

    @property
    def lm_base(self) -> nn.Module:
        return self.net.language_model.model

    @property
    def lm_head(self) -> nn.Module:
        return self.net.language_model.lm_head

    @property
    def num_image_tokens(self) -> int:
        return self.net.config.num_query_tokens


class LlavaVQA(GenerativeVLM):
    blocks_path = "net.model.language_model.layers"
    bridge_path = "model.multi_modal_projector"
    vision_paths = ("net.model.vision_tower",)
    lm_extra_paths = (
        "net.model.language_model.embed_tokens",
        "net.model.language_model.norm",
        "net.lm_head",
    )

    def image_hidden(self, pixel_values: Tensor) -> Tensor:
        cfg = self.net.config
        out = self.net.model.vision_tower(pixel_values, output_hidden_states=True)
        layer = cfg.vision_feature_layer
        layers = [layer] if isinstance(layer, int) else list(layer)
        feats = [out.hidden_states[i] for i in layers]
        if cfg.vision_feature_select_strategy == "default":  # drop the CLS token
            feats = [f[:, 1:] for f in feats]
        return torch.cat(feats, dim=-1)

    @property
    def lm_base(self) -> nn.Module:
        return self.net.model.language_model

    @property
    def lm_head(self) -> nn.Module:
        return self.net.lm_head

    @property
    def num_image_tokens(self) -> int:
        return self.net.config.image_seq_length


# -- tiny configs ------------------------------------------------------------------------------
def _vision_kwargs(spec: ModelSpec) -> dict:
    return dict(
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.vision_layers,
        num_attention_heads=spec.num_heads,
        image_size=spec.image_size,
        patch_size=spec.patch_size,
        initializer_range=spec.initializer_range,
    )


def tiny_blip2_config(spec: ModelSpec):
    """Vision tower, a 2-block Q-Former with 4 query tokens, an OPT of `num_layers` blocks. The
    language vocabulary is the tokenizer's plus one image placeholder token (id vocab_size)."""
    from transformers import Blip2Config, Blip2QFormerConfig, Blip2VisionConfig, OPTConfig

    h = spec.hidden_size
    cfg = Blip2Config(
        vision_config=Blip2VisionConfig(**_vision_kwargs(spec)),
        qformer_config=Blip2QFormerConfig(
            hidden_size=h,
            num_hidden_layers=2,
            num_attention_heads=spec.num_heads,
            intermediate_size=spec.intermediate_size,
            encoder_hidden_size=h,
            vocab_size=spec.vocab_size,
            initializer_range=spec.initializer_range,
        ),
        text_config=OPTConfig(
            vocab_size=spec.vocab_size + 1,
            hidden_size=h,
            word_embed_proj_dim=h,
            num_hidden_layers=spec.num_layers,
            num_attention_heads=spec.num_heads,
            ffn_dim=spec.intermediate_size,
            max_position_embeddings=spec.max_text_len + spec.max_answer_length + 8,
            pad_token_id=0,
            bos_token_id=2,
            eos_token_id=3,
            dropout=0.0,
            attention_dropout=0.0,
            init_std=spec.initializer_range,
        ),
        num_query_tokens=4,
        image_token_index=spec.vocab_size,
        initializer_range=spec.initializer_range,
    )
    return cfg


def tiny_llava_config(spec: ModelSpec):
    """A CLIP vision tower, a 2-layer MLP projector and a Llama of `num_layers` blocks; one image
    token per patch (CLS dropped, LLaVA's "default" strategy), image token id = vocab_size."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    h = spec.hidden_size
    patches = (spec.image_size // spec.patch_size) ** 2
    return LlavaConfig(
        vision_config=CLIPVisionConfig(**_vision_kwargs(spec), projection_dim=h),
        text_config=LlamaConfig(
            vocab_size=spec.vocab_size + 1,
            hidden_size=h,
            intermediate_size=spec.intermediate_size,
            num_hidden_layers=spec.num_layers,
            num_attention_heads=spec.num_heads,
            num_key_value_heads=spec.num_heads,
            max_position_embeddings=patches + spec.max_text_len + spec.max_answer_length + 8,
            pad_token_id=0,
            bos_token_id=2,
            eos_token_id=3,
            initializer_range=spec.initializer_range,
        ),
        image_token_index=spec.vocab_size,
        image_seq_length=patches,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )


_FAMILIES = {
    "blip2": (Blip2VQA, OPT_KINDS, tiny_blip2_config, "Blip2ForConditionalGeneration"),
    "llava": (LlavaVQA, LLAMA_KINDS, tiny_llava_config, "LlavaForConditionalGeneration"),
}


def build_generative(spec: ModelSpec, family: str) -> tuple[GenerativeVLM, LayerSpace]:
    """Tiny (no `spec.path`, random weights fixed by `init_seed`) or real (`from_pretrained` of
    the local folder `spec.path`, `local_files_only`, eager attention, dtype and device from
    the spec)."""
    import transformers

    tiny_config, class_name = _FAMILIES[family][2:]
    net_cls = getattr(transformers, class_name)
    device = resolve_device(spec.device)
    if spec.path is None:
        cfg = tiny_config(spec)
        eager(cfg)
        with seeded(spec.init_seed):
            net = net_cls(cfg)
        dtype = torch.float32
    else:
        dtype = resolve_dtype(spec.dtype, device)
        net = net_cls.from_pretrained(
            spec.path, local_files_only=True, dtype=dtype, attn_implementation="eager"
        )
    model, space = assemble_generative(net, family, spec)
    finish(model, device, dtype)
    return model, space


def assemble_generative(net: nn.Module, family: str, spec: ModelSpec):
    """Wrap a built BLIP-2 or LLaVA net, name its head and attach the unit mode."""
    wrapper, kinds = _FAMILIES[family][:2]
    if getattr(net.config, "use_decoder_only_language_model", True) is False:
        raise ValueError(f"{spec.path}: only decoder-only language models are supported")
    model = wrapper(net)
    head = [f"net.{model.bridge_path}."]
    if not spec.freeze_vision:
        head += [f"{p}." if p != "net.query_tokens" else p for p in model.vision_paths]
    if spec.train_embeddings:
        head += [f"{p}." for p in model.lm_extra_paths]
    names = [n for n, _ in model.named_parameters()]
    head = [p for p in head if any(n.startswith(p) for n in names)]  # tied weights appear once
    site = UnitSite(model.blocks_path, net.config.text_config.hidden_size, kinds, tuple(head))
    with seeded(spec.init_seed + 1):
        return get_unit_mode(spec.unit_mode).attach(model, site, spec)


def _from_config(cfg, family: str, spec: ModelSpec):
    import transformers

    eager(cfg)
    return assemble_generative(getattr(transformers, _FAMILIES[family][3])(cfg), family, spec)


def blip2_from_config(cfg, spec: ModelSpec):
    """The model of a full `Blip2Config` (on torch's default device: the cost estimate's meta)."""
    return _from_config(cfg, "blip2", spec)


def llava_from_config(cfg, spec: ModelSpec):
    """The model of a full `LlavaConfig` (on torch's default device: the cost estimate's meta)."""
    return _from_config(cfg, "llava", spec)


def build_blip2(spec: ModelSpec) -> tuple[GenerativeVLM, LayerSpace]:
    return build_generative(spec, "blip2")


def build_llava(spec: ModelSpec) -> tuple[GenerativeVLM, LayerSpace]:
    return build_generative(spec, "llava")
