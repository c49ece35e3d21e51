"""PromptFL (Guo et al.): learnable prompt tokens shared through FL, CoOp style (unit mode
`prompt`, registered in `f3ocus_ray.models.units.prompt`).

`prompt_length` learnable vectors (P x hidden) are inserted into the question's token
embeddings, right after its `[CLS]` token: the text becomes `[CLS] p_1 .. p_P question [SEP]`
(the prompt takes word embeddings' place; position, token-type embeddings and the embedding
LayerNorm apply to it as to any token, CoOp's context vectors). `[CLS]` stays first because
ViLT's pooler reads the first token. The attention mask grows by P ones, and the model is built
with P more text positions (`max_position_embeddings = max_text_len + P`).

The whole backbone is frozen; the prompt is the single selectable unit ("prompt") and the head
trains as in every method here (`model.train_head`). Clients train prompt and head locally, the
server averages them (FedAvg), so `federation.strategy: full` is PromptFL.

Simplification: PromptFL prompts CLIP's text encoder; ViLT has a single joint encoder, so the
prompt is prepended to the text half of its input sequence (the closest analogue).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import ViltForQuestionAnswering

from f3ocus_ray.models.split import PrefixSplit
from f3ocus_ray.models.vilt_nets import VisionLanguageClassifier
from f3ocus_ray.models.vilt_split import prompted_prefix_split


class PromptedVisionLanguageClassifier(VisionLanguageClassifier):
    """A ViLT classifier with `prompt_length` learnable text prompt tokens (parameter `prompt`)."""

    def __init__(self, vilt: ViltForQuestionAnswering, prompt_length: int, init_std: float):
        super().__init__(vilt)
        hidden = vilt.config.hidden_size
        self.prompt = nn.Parameter(torch.randn(prompt_length, hidden) * init_std)

    @property
    def prompt_length(self) -> int:
        return self.prompt.shape[0]

    def insert_prompt(self, word_embeds: torch.Tensor) -> torch.Tensor:
        """(n, T, d) word embeddings -> (n, T + P, d), the prompt after the first ([CLS])."""
        n = word_embeds.shape[0]
        prompt = self.prompt.unsqueeze(0).expand(n, -1, -1).to(word_embeds.dtype)
        return torch.cat([word_embeds[:, :1], prompt, word_embeds[:, 1:]], dim=1)

    def prompt_mask(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """(n, T) attention mask -> (n, T + P): the prompt tokens are always attended."""
        ones = attention_mask.new_ones((attention_mask.shape[0], self.prompt_length))
        return torch.cat([attention_mask[:, :1], ones, attention_mask[:, 1:]], dim=1)

    def forward(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        words = self.net.vilt.embeddings.text_embeddings.word_embeddings(input_ids)
        return self.net(
            inputs_embeds=self.insert_prompt(words),
            attention_mask=self.prompt_mask(attention_mask),
            pixel_values=pixel_values,
        ).logits

    def split_frozen_prefix(self) -> PrefixSplit:
        return prompted_prefix_split(self)
