"""`f3ocus cost`: parameters, Mbit and bf16 memory of real families built on the meta device.
The units counted are the units a run trains; the published ViLT-B/32 gives the paper's 4
adapters; bad options exit 2 naming the option."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from tiny import TINY_SPEC

from f3ocus_ray.cli import main
from f3ocus_ray.errors import ConfigError
from f3ocus_ray.models import build_model
from f3ocus_ray.models.cost import Target, build_on_meta, cost_rows, published_target
from f3ocus_ray.models.memory import BlockShape, Geometry, training_memory


def _tiny_config(family: str, spec):
    if family == "albef":
        from f3ocus_ray.models.albef import tiny_albef_sizes

        return tiny_albef_sizes(spec)
    if family == "blip":
        from f3ocus_ray.models.blip import tiny_blip_config

        return tiny_blip_config(spec)
    from f3ocus_ray.models.generative import tiny_blip2_config, tiny_llava_config

    return {"blip2": tiny_blip2_config, "llava": tiny_llava_config}[family](spec)


@pytest.mark.parametrize("family", ["albef", "blip", "blip2", "llava"])
def test_meta_counts_are_the_units_and_head_a_run_trains(family):
    for mode in ("layers", "adapters"):
        spec = replace(TINY_SPEC, name=f"tiny-{family}", unit_mode=mode)
        model, space = build_model(spec)  # the run's builder, real weights on the CPU
        built = build_on_meta(Target("tiny", family, _tiny_config(family, spec), 5), mode)
        np.testing.assert_array_equal(built.unit_sizes, space.unit_sizes(model))
        params = dict(model.named_parameters())
        assert built.head == sum(params[n].numel() for n in space.head)
        assert built.total == sum(p.numel() for p in model.parameters())


def test_published_vilt_gives_the_papers_four_adapters():
    rows = {r.method: r for r in cost_rows(published_target("vilt"), [4], ["adapters"])}
    full = rows["full fine-tuning (every parameter)"]
    four = rows["adapters: 4 of 12 units"]
    assert four.params == 4 * (768 * 48 + 48 + 48 * 768 + 768)  # 0.30M, as the paper's Table 2
    assert abs(full.params - 122.35e6) / 122.35e6 < 0.05  # the paper counts 122.35M
    assert 350 < four.ratio < 450  # the paper's ~400x
    assert rows["adapters: 4 of 12 units + head"].ratio < 20  # the VQA head dominates


def test_memory_is_weights_grads_adam_and_the_activation_formula():
    block = BlockShape(hidden=64, heads=4, ffn=256, tokens=10)
    b, s, h, a = 2, 10, 64, 4
    assert block.activation_bytes(b) == 34 * s * b * h + 6 * a * s * s * b  # Korthikanti's form
    geo = Geometry((block,) * 3, logit_positions=1, classes=7)
    m = training_memory(
        geo, total_params=1000, unit_sizes=[10, 30, 20], head_params=5, k=2, batch=b
    )
    trained = 30 + 20 + 5  # the 2 largest units and the head
    assert (m.weights, m.grads, m.adam) == (2000, 2 * trained, 4 * trained)
    assert m.activations == 3 * block.activation_bytes(b) + 10 * b * 7
    assert m.fits == "MIG 1g.10gb"


def _saved_bytes(model, space, inputs) -> int:
    """What autograd saves for backward in one forward (every unit trained), parameters aside."""
    import torch

    space.apply(model, np.ones(space.num_units, dtype=bool))
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = model(*inputs)
        target = torch.zeros(logits.shape[:-1].numel(), dtype=torch.long)
        torch.nn.functional.cross_entropy(logits.float().flatten(0, -2), target)
    return sum(saved.values())


@pytest.mark.parametrize("family", ["vilt", "blip", "albef", "blip2", "llava"])
def test_the_activation_formula_is_near_what_autograd_saves(family):
    import torch

    from f3ocus_ray.models.memory import geometry
    from f3ocus_ray.models.registry import is_generative

    sizes = dict(hidden_size=64, num_heads=2, intermediate_size=256, image_size=64)
    spec = replace(TINY_SPEC, name=f"tiny-{family}", vocab_size=300, max_text_len=16, **sizes)
    model, space = build_model(spec)
    model.to(torch.bfloat16)
    answer = spec.max_answer_length + 1 if is_generative(spec.name) else 0
    g = torch.Generator().manual_seed(0)
    n, t = 2, 16 + answer
    inputs = (
        torch.rand(n, 3, 64, 64, generator=g),
        torch.randint(5, 300, (n, t), generator=g),
        torch.ones(n, t, dtype=torch.long),
    )
    measured = _saved_bytes(model, space, inputs)
    config = model.net.config if family == "vilt" else _tiny_config(family, spec)
    geo = geometry(family, config, 16, answer)
    classes = None if is_generative(spec.name) else spec.num_outputs
    sizes = space.unit_sizes(model)
    estimate = training_memory(geo, 0, sizes, 0, len(sizes), n, classes).activations
    assert 0.8 < estimate / measured < 1.5, (estimate, measured)


def test_cli_prints_the_table_and_a_users_config(tmp_path, capsys):
    assert main(["cost", "--family", "vilt", "--budget", "4", "--unit-mode", "adapters"]) == 0
    out = capsys.readouterr().out
    assert "| adapters: 4 of 12 units | 0.30M | 9.5 | 4.8 | 394.4 |" in out
    assert "404x" in out and "| 12 |" in out  # the paper's figure; memory for all 12 units
    spec = replace(TINY_SPEC, name="tiny-llava")
    (tmp_path / "config.json").write_text(_tiny_config("llava", spec).to_json_string())
    argv = ["cost", "--family", "llava", "--config-json", str(tmp_path / "config.json")]
    assert main([*argv, "--budget", "3"]) == 0
    assert "| layers: 3 of 4 units |" in capsys.readouterr().out
    assert main(["cost", "--family", "llava", "--model-path", str(tmp_path)]) == 0  # a folder
    assert "| layers: 4 of 4 units |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--family", "vilt", "--budget", "13"], "--budget: 13 is not in 1..12"),
        (["--family", "llava", "--unit-mode", "bias"], "--unit-mode: 'bias': llava's blocks"),
        (["--family", "vilt", "--unit-mode", "nope"], "--unit-mode: unknown unit mode 'nope'"),
        (["--config-json", "x.json"], "--config-json and --model-path need --family"),
        (["--family", "vilt", "--config-json", "/nonexistent.json"], "--config-json: cannot read"),
        (["--family", "vilt", "--batch-size", "0"], "--batch-size: must be at least 1"),
    ],
)
def test_cli_refuses_bad_options_with_exit_2(argv, message, capsys):
    assert main(["cost", *argv]) == 2
    assert message in capsys.readouterr().err


def test_albef_sizes_json_names_unknown_fields(tmp_path):
    from f3ocus_ray.models.cost import target_from_json

    (tmp_path / "albef.json").write_text(json.dumps({"hidden": 768}))
    with pytest.raises(ConfigError, match=r"unknown ALBEF size\(s\) \['hidden'\]"):
        target_from_json("albef", str(tmp_path / "albef.json"), None)


def test_cli_reads_an_albef_checkpoint_file(tmp_path, capsys):
    import torch
    from test_models_families import _albef_original_keys

    model, space = build_model(replace(TINY_SPEC, name="tiny-albef"))
    torch.save({"model": _albef_original_keys(model)}, tmp_path / "ALBEF.pth")
    argv = ["cost", "--family", "albef", "--model-path", str(tmp_path / "ALBEF.pth")]
    assert main([*argv, "--budget", "1", "--answers", "5"]) == 0
    out = capsys.readouterr().out
    sizes = space.unit_sizes(model)  # text blocks, then the larger fusion blocks
    low, high = (f"{int(n) / 1e3:,.1f}k" for n in (sizes.min(), sizes.max()))
    assert sizes.min() < sizes.max() and f"| layers: 1 of 4 units | {low}-{high} |" in out


def test_the_cli_lists_every_published_model():
    from f3ocus_ray.cli import _COST_FAMILIES
    from f3ocus_ray.models.published import PUBLISHED

    assert _COST_FAMILIES == tuple(PUBLISHED)
