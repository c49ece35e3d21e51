"""The frozen-prefix split of the tiny ViLT: embeddings (frozen, not vmappable) | the rest.

Mirrors `transformers`' `ViltModel.forward` (all-ones pixel mask, the modality embeddings, the
eager bidirectional mask) so that `body(prefix(x))` equals the model's logits.
"""

from __future__ import annotations

import torch
from torch import Tensor

from f3ocus_ray.models.vilt import VisionLanguageClassifier
from f3ocus_ray.scoring.split import PrefixSplit, register_prefix_split

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


def vilt_prefix_split(model: VisionLanguageClassifier) -> PrefixSplit:
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

    def body(m: VisionLanguageClassifier, hidden: Tensor, additive_mask: Tensor) -> Tensor:
        v = m.net.vilt
        for layer in v.encoder.layer:
            hidden = layer(hidden, additive_mask)[0]
        return m.net.classifier(v.pooler(v.layernorm(hidden)))

    frozen = frozenset(n for n, _ in model.named_parameters() if n.startswith(_EMBEDDINGS))
    return PrefixSplit(prefix=prefix, body=body, prefix_params=frozen)


register_prefix_split(VisionLanguageClassifier, vilt_prefix_split)
