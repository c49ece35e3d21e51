"""ViLT's pretraining objectives: VQA (classification over the corpus's answers, the same
head `ViltForQuestionAnswering` fine-tunes), masked language modelling of the captions given
the image (an MLM head tied to the word embeddings) and image-text matching (a linear head on
the pooled output: is this caption this image's?). Only the `ViltForQuestionAnswering` part is
saved; the MLM and ITM heads are dropped, as ViLT's released VQA checkpoints drop them."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import ViltConfig, ViltForQuestionAnswering
from transformers.models.vilt.modeling_vilt import ViltMLMHead

from f3ocus_ray.models.spec import ModelSpec


class ViltPretraining(nn.Module):
    """A `ViltForQuestionAnswering` with MLM and ITM heads beside its VQA classifier."""

    def __init__(self, spec: ModelSpec, num_answers: int):
        super().__init__()
        cfg = ViltConfig(
            hidden_size=spec.hidden_size,
            num_hidden_layers=spec.num_layers,
            num_attention_heads=spec.num_heads,
            intermediate_size=spec.intermediate_size,
            image_size=spec.image_size,
            patch_size=spec.patch_size,
            max_image_length=-1,
            vocab_size=spec.vocab_size,
            max_position_embeddings=spec.max_text_len,
            num_labels=num_answers,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            initializer_range=spec.initializer_range,
            attn_implementation="eager",  # as the fine-tuned model runs (torch.func transforms)
        )
        self.net = ViltForQuestionAnswering(cfg)
        self.mlm = ViltMLMHead(cfg)
        self.mlm.decoder.weight = self.net.vilt.embeddings.text_embeddings.word_embeddings.weight
        self.itm = nn.Linear(cfg.hidden_size, 2)
        self.mask_id = 4  # [MASK] (data.tokenizer.SPECIAL_TOKENS)

    def _encode(self, pixels, ids, mask):
        return self.net.vilt(input_ids=ids, attention_mask=mask, pixel_values=pixels)

    def losses(self, batch: dict[str, torch.Tensor], generator: torch.Generator):
        """One loss per objective in `batch`: "vqa" (question_ids, question_mask, answers),
        "mlm" and "itm" (caption_ids, caption_mask, matched: 1 where the caption is the image's;
        MLM only on matched pairs)."""
        out: dict[str, torch.Tensor] = {}
        pixels = batch["pixels"]
        if "answers" in batch:
            pooled = self._encode(pixels, batch["question_ids"], batch["question_mask"])
            logits = self.net.classifier(pooled.pooler_output)
            out["vqa"] = F.cross_entropy(logits, batch["answers"])
            out["vqa_acc"] = (logits.argmax(-1) == batch["answers"]).float().mean().detach()
        if "matched" in batch:
            ids, mask, matched = batch["caption_ids"], batch["caption_mask"], batch["matched"]
            # every caption is masked alike (else the mask would tell matched from not);
            # MLM is scored on matched pairs only
            draw = torch.rand(ids.shape, generator=generator) < batch["mlm_probability"]
            chosen = draw & mask.bool() & (ids > self.mask_id)
            masked = torch.where(chosen, torch.full_like(ids, self.mask_id), ids)
            chosen = chosen & matched.bool()[:, None]
            enc = self._encode(pixels, masked, mask)
            if "mlm" in batch["objectives"]:
                text = enc.last_hidden_state[:, : ids.shape[1]]
                if chosen.any():
                    out["mlm"] = F.cross_entropy(self.mlm(text[chosen]), ids[chosen])
            if "itm" in batch["objectives"]:
                out["itm"] = F.cross_entropy(self.itm(enc.pooler_output), matched)
        return out

    @torch.no_grad()
    def answer(self, pixels, ids, mask) -> torch.Tensor:
        return self.net.classifier(self._encode(pixels, ids, mask).pooler_output).argmax(-1)

    def save(self, folder: str | Path) -> None:
        self.net.save_pretrained(str(folder), safe_serialization=True)
