"""ViLT (`ViltForQuestionAnswering`): the tiny one built from config with random weights
(offline), and a real one from a local checkpoint, for VQA and multi-label tasks.

VQA is classification over the closed answer vocabulary (cross-entropy); the multi-label task
uses the same model with one logit per finding (binary cross-entropy). Units: the encoder's
blocks. Head: the final norm, pooler and classifier (with `train_embeddings` also the text and
patch embeddings).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from torch import nn
from transformers import ViltConfig, ViltForQuestionAnswering

from f3ocus_ray.models.common import finish, resolve_device, resolve_dtype, seeded
from f3ocus_ray.models.layer_space import LayerSpace
from f3ocus_ray.models.units import UnitKinds, UnitSite, get_unit_mode
from f3ocus_ray.models.vilt_nets import TaskHeads, VisionLanguageClassifier

if TYPE_CHECKING:
    from f3ocus_ray.models.spec import ModelSpec

BLOCKS = "net.vilt.encoder.layer"
KINDS = UnitKinds(layernorm="layernorm", lora_targets=("query", "value"))


def _site(model: VisionLanguageClassifier, train_embeddings: bool) -> UnitSite:
    head = ("net.vilt.layernorm.", "net.vilt.pooler.", "net.classifier.")
    head += ("net.vilt.embeddings.",) if train_embeddings else ()
    return UnitSite(BLOCKS, model.net.config.hidden_size, KINDS, head)


def build_tiny_vilt(spec: ModelSpec) -> tuple[VisionLanguageClassifier, LayerSpace]:
    """Build the model with weights fixed by `init_seed` (identical on every worker).

    The head (final norm, pooler, classifier) is trained by every client; with
    `train_embeddings` the text and patch embeddings join it (useful when the weights are
    random rather than pretrained: a frozen random patch projection slows learning). With
    several `output_blocks` (tasks sharing the model), the classifier's last layer is one
    linear head per task, trained by that task's clients only; the layers before it are shared.
    """
    if spec.output_blocks and sum(spec.output_blocks) != spec.num_outputs:
        raise ValueError(
            f"output_blocks {spec.output_blocks} do not sum to num_outputs {spec.num_outputs}"
        )
    mode = get_unit_mode(spec.unit_mode)
    cfg = ViltConfig(
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        intermediate_size=spec.intermediate_size,
        image_size=spec.image_size,
        patch_size=spec.patch_size,
        max_image_length=-1,
        vocab_size=spec.vocab_size,
        max_position_embeddings=spec.max_text_len + mode.text_positions(spec),
        num_labels=spec.num_outputs,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=spec.initializer_range,
        attn_implementation="eager",  # torch.func transforms (LNTK) need eager attention
    )
    with seeded(spec.init_seed):
        model = VisionLanguageClassifier(ViltForQuestionAnswering(cfg))
        if len(spec.output_blocks) > 1:
            last = model.net.classifier[-1]
            model.net.classifier[-1] = TaskHeads(last.in_features, tuple(spec.output_blocks))
        model, space = mode.attach(model, _site(model, spec.train_embeddings), spec)
    model.eval()  # no dropout anywhere (both probabilities are 0): eval mode changes nothing
    last = model.net.classifier[-1]
    if isinstance(last, TaskHeads):
        prefix = f"net.classifier.{len(model.net.classifier) - 1}.heads"
        task_heads = tuple(
            (r, tuple(n for n in space.head if n.startswith(f"{prefix}.{k}.")))
            for k, r in enumerate(last.ranges)
        )
        space = replace(space, task_heads=task_heads)
    return model, space


def assemble_vilt(net: ViltForQuestionAnswering, spec: ModelSpec):
    """Wrap a built `ViltForQuestionAnswering` (its last classifier layer replaced, seeded, when
    its answers are not the data set's) and attach the unit mode. Units, head: as the tiny
    ViLT's."""
    last = net.classifier[-1]
    if last.out_features != spec.num_outputs:
        with seeded(spec.init_seed + 2):
            dtype = last.weight.dtype
            net.classifier[-1] = nn.Linear(last.in_features, spec.num_outputs, dtype=dtype)
        net.config.num_labels = spec.num_outputs
    model = VisionLanguageClassifier(net)
    return get_unit_mode(spec.unit_mode).attach(model, _site(model, spec.train_embeddings), spec)


def vilt_from_config(cfg: ViltConfig, spec: ModelSpec):
    """The model of a full `ViltConfig` (weights as torch's default device leaves them: the
    cost estimate builds it on the meta device)."""
    return assemble_vilt(ViltForQuestionAnswering(cfg), spec)


def build_real_vilt(spec: ModelSpec) -> tuple[VisionLanguageClassifier, LayerSpace]:
    """A local `ViltForQuestionAnswering` checkpoint (see `assemble_vilt`)."""
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    net = ViltForQuestionAnswering.from_pretrained(
        spec.path, local_files_only=True, dtype=dtype, attn_implementation="eager"
    )
    model, space = assemble_vilt(net, spec)
    finish(model, device, dtype)
    return model, space
