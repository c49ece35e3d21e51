"""The frozen-prefix split of ViLT: embeddings (frozen, not vmappable) | the rest.

Mirrors `transformers`' `ViltModel.forward` (all-ones pixel mask, the modality embeddings, the
eager bidirectional mask) so that `body(prefix(x))` equals the model's logits. With PromptFL's
prompt (unit mode `prompt`) the text embeddings' position/LayerNorm part runs in the body, after
the prompt is inserted, so the prompt can be scored through the same vmapped path.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from f3ocus_ray.models.split import PrefixSplit

# The models split here are vilt_nets.VisionLanguageClassifier and, for the prompted split,
# promptfl.PromptedVisionLanguageClassifier; both import this module, so it types them as
# nn.Module (no import back).

_EMBEDDINGS = "net.vilt.embeddings."


def _additive_mask(config, hidden: Tensor, mask: Tensor) -> Tensor:
    """The additive attention mask `ViltModel.forward` hands its encoder (eager attention)."""
    try:
        from transformers.masking_utils import create_bidirectional_mask
    except ImportError:  # transformers < 5: ViltModel used get_extended_attention_mask
        return (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
    return create_bidirectional_mask(
        config=config, inputs_embeds=hidden, attention_mask=mask, allow_is_bidirectional_skip=False
    )


def _frozen(model: nn.Module) -> frozenset[str]:
    return frozenset(n for n, _ in model.named_parameters() if n.startswith(_EMBEDDINGS))


def vilt_prefix_split(model: nn.Module) -> PrefixSplit:
    """`VisionLanguageClassifier.split_frozen_prefix`: the embeddings | encoder and head."""
    vilt = model.net.vilt
    size = vilt.config.image_size

    def prefix(
        pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        n = pixel_values.shape[0]
        pixel_mask = torch.ones((n, size, size), device=pixel_values.device)
        hidden, mask = vilt.embeddings(
            input_ids, attention_mask, None, pixel_values, pixel_mask, None, None, 1
        )
        return hidden, _additive_mask(vilt.config, hidden, mask)

    def body(m: nn.Module, hidden: Tensor, additive_mask: Tensor) -> Tensor:
        return _encode(m, hidden, additive_mask)

    return PrefixSplit(prefix=prefix, body=body, prefix_params=_frozen(model))


def _encode(m: nn.Module, hidden: Tensor, additive_mask: Tensor) -> Tensor:
    v = m.net.vilt
    for layer in v.encoder.layer:
        hidden = layer(hidden, additive_mask)[0]
    return m.net.classifier(v.pooler(v.layernorm(hidden)))


def prompted_prefix_split(model: nn.Module) -> PrefixSplit:
    """PromptFL: the prompt enters before the text embeddings' position embeddings and
    LayerNorm, so those move into the body; the image embeddings and the word lookups (the
    non-vmappable part) stay in the prefix, with the attention mask (the prompt is all ones)."""
    vilt = model.net.vilt
    size = vilt.config.image_size

    def prefix(
        pixel_values: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        emb = vilt.embeddings
        n = pixel_values.shape[0]
        pixel_mask = torch.ones((n, size, size), device=pixel_values.device)
        image, image_mask, _ = emb.visual_embed(
            pixel_values, pixel_mask, max_image_length=vilt.config.max_image_length
        )
        image = image + emb.token_type_embeddings(torch.ones_like(image_mask, dtype=torch.long))
        words = emb.text_embeddings.word_embeddings(input_ids)
        mask = torch.cat([model.prompt_mask(attention_mask), image_mask], dim=1)
        shape = image.new_empty((n, mask.shape[1], image.shape[-1]))  # the mask's metadata
        return words, image, _additive_mask(vilt.config, shape, mask)

    def body(m: nn.Module, words: Tensor, image: Tensor, additive_mask: Tensor) -> Tensor:
        emb = m.net.vilt.embeddings
        text = emb.text_embeddings(inputs_embeds=m.insert_prompt(words))
        modality = torch.zeros(text.shape[:2], dtype=torch.long, device=text.device)
        text = text + emb.token_type_embeddings(modality)
        return _encode(m, torch.cat([text, image], dim=1), additive_mask)

    return PrefixSplit(prefix=prefix, body=body, prefix_params=_frozen(model))
