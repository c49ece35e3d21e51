"""Unit modes are registered objects: a new one is one class and one registration line, and the
config, the model builder, the driver's unit names and the paper tables all read the registry."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from tiny import TINY_SPEC

from f3ocus_ray.config import MODEL_NAMES, ModelConfig, load_config, parse_config
from f3ocus_ray.errors import ConfigError
from f3ocus_ray.models import ModelSpec, build_model
from f3ocus_ray.models.families import FAMILY_BUILDERS
from f3ocus_ray.models.registry import FAMILIES
from f3ocus_ray.models.units import (
    ClientMethod,
    UnitMode,
    UnitSite,
    get_unit_mode,
    register_unit_mode,
    unit_mode_names,
    unregister_unit_mode,
)
from f3ocus_ray.platform.paper_tables import method_label

torch.set_num_threads(1)


class AttentionOutput(UnitMode):
    """A toy mode: a unit is its block's attention output projection (nothing injected)."""

    name = "attention_output"
    label = "attention-output tuning"
    families = frozenset({"tiny-vilt"})

    def unit_filter(self, site: UnitSite) -> str | None:
        return "attention.output.dense."


@pytest.fixture
def toy():
    register_unit_mode(AttentionOutput)  # the one registration line
    yield get_unit_mode("attention_output")
    unregister_unit_mode("attention_output")


def test_a_toy_unit_mode_builds_and_names_its_units(toy):
    model, space = build_model(replace(TINY_SPEC, unit_mode="attention_output"))
    assert space.unit_names == [f"net.vilt.encoder.layer.{i}" for i in range(4)]
    for i, unit in enumerate(space.units):
        prefix = f"net.vilt.encoder.layer.{i}.attention.output.dense"
        assert unit.params == (f"{prefix}.weight", f"{prefix}.bias")
    # nothing injected: the same parameters as whole-block units, bit for bit
    plain, _ = build_model(TINY_SPEC)
    a, b = dict(model.named_parameters()), dict(plain.named_parameters())
    assert list(a) == list(b) and all(torch.equal(a[n], b[n]) for n in a)
    space.apply(model, np.array([True, False, False, True]))
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained == set(space.units[0].params) | set(space.units[3].params) | set(space.head)
    assert toy.unit_names(4) == ["layer0", "layer1", "layer2", "layer3"] and toy.num_units(4) == 4
    assert type(toy.client_method(model, space, TINY_SPEC)) is ClientMethod  # the no-op one


def test_the_config_accepts_a_registered_mode_and_names_the_choices(toy):
    assert parse_config({"model": {"unit_mode": "attention_output"}}).model.num_units == 12
    with pytest.raises(ConfigError, match=r"model\.unit_mode: 'attention_output' .*tiny-vilt"):
        parse_config({"model": {"name": "tiny-blip", "unit_mode": "attention_output"}})
    label = {"federation.strategy": "full", "model.unit_mode": "attention_output"}
    assert method_label(label, {}) == "attention-output tuning"
    unregister_unit_mode("attention_output")
    with pytest.raises(ConfigError, match=r"model\.unit_mode: unknown unit mode 'attention_out"):
        parse_config({"model": {"unit_mode": "attention_output"}})


def test_an_unknown_unit_mode_is_a_clear_error_everywhere():
    with pytest.raises(ConfigError, match=r"model\.unit_mode: unknown unit mode 'lroa' \(did you"):
        parse_config({"model": {"unit_mode": "lroa"}})
    with pytest.raises(ValueError, match=r"unknown unit mode 'lroa'; choose from .*'lora'"):
        build_model(replace(TINY_SPEC, unit_mode="lroa"))
    with pytest.raises(ValueError, match=r"unit mode 'prompt' \(PromptFL\) is .*tiny-vilt only"):
        build_model(replace(TINY_SPEC, name="tiny-albef", unit_mode="prompt"))


def test_the_old_units_key_still_works_with_a_deprecation_message():
    with pytest.warns(DeprecationWarning, match="model.units is deprecated.*model.unit_mode"):
        cfg = load_config(None, ["model.units=prompt", "federation.budgets=1"])
    assert cfg.model.unit_mode == "prompt" and cfg.model.num_units == 1
    assert "units" not in cfg.model.model_dump()  # saved under the new name
    with pytest.raises(ConfigError, match="both model.units and model.unit_mode"):
        parse_config({"model": {"units": "lora", "unit_mode": "lora"}})


def test_built_in_modes_and_families_are_listed_once():
    assert unit_mode_names() == (
        "layers",
        "adapters",
        "lora",
        "layernorm",
        "bias",
        "prompt",
        "dual_adapters",
    )
    assert tuple(FAMILY_BUILDERS) == MODEL_NAMES == tuple(FAMILIES)
    assert get_unit_mode("prompt").unit_names(12) == ["prompt"]
    assert get_unit_mode("bias").unsupported("llava") and not get_unit_mode("bias").unsupported(
        "blip2"
    )


def test_model_spec_from_config_copies_the_model_section():
    m = ModelConfig(unit_mode="lora", lora_rank=2, distill_weight=0.5, device="cuda")
    spec = ModelSpec.from_config(
        m, image_size=32, vocab_size=50, max_text_len=8, num_outputs=5, output_blocks=(3, 2)
    )
    assert (spec.unit_mode, spec.lora_rank, spec.distill_weight) == ("lora", 2, 0.5)
    assert (spec.image_size, spec.output_blocks, spec.num_layers) == (32, (3, 2), 12)
    assert spec.device == "cuda"  # a tiny model goes to the GPU only when asked by name
    auto = ModelSpec.from_config(
        ModelConfig(), image_size=32, vocab_size=50, max_text_len=8, num_outputs=5
    )
    assert auto.device == "cpu"
    with pytest.raises(TypeError, match="no field"):
        ModelSpec.from_config(m, image_size=32, colour="blue")


def test_the_feddat_client_method_loads_private_state_and_evaluates_as_the_teacher():
    from f3ocus_ray.models.feddat import dual_adapters, private_names

    spec = replace(TINY_SPEC, unit_mode="dual_adapters", adapter_reduction=4)
    model, space = build_model(spec)
    method = get_unit_mode("dual_adapters").client_method(model, space, spec)
    mask = np.array([False, True, True, False])
    trained = method.prepare_train(None, mask)
    names = dict(model.named_parameters())
    assert [id(p) for p in trained] == [id(names[n]) for n in private_names(space, mask)]
    assert all(p.requires_grad for p in trained)
    private = {n: np.full_like(v, 0.5) for n, v in method.collect_private().items()}
    with method.eval_context(private):
        assert all(m.teacher for m in dual_adapters(model))
        assert all(torch.all(names[n] == 0.5) for n in private)
    assert not any(m.teacher for m in dual_adapters(model))
