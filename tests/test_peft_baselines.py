"""PromptFL (unit mode `prompt`) and FedDAT (unit mode `dual_adapters`) on the tiny ViLT: the model
parts, the losses, one round on the workers and short engine runs."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny import TINY_SPEC, random_client

from f3ocus_ray.config import load_config
from f3ocus_ray.errors import ConfigError
from f3ocus_ray.fl.training import local_train
from f3ocus_ray.models import build_model
from f3ocus_ray.models.feddat import (
    dat_step_loss,
    mutual_distillation_loss,
    private_names,
    set_teacher,
)
from f3ocus_ray.scoring import score_units
from f3ocus_ray.scoring.functional import ModelFunction
from f3ocus_ray.strategies.aggregation import masked_fedavg
from f3ocus_ray.task import task_loss

torch.set_num_threads(1)

PROMPT = replace(TINY_SPEC, unit_mode="prompt", prompt_length=3)
DAT = replace(TINY_SPEC, unit_mode="dual_adapters", adapter_reduction=4)
CLIENTS = "[chest_xray, oct, dermatoscope, blood_microscope]"


def _values(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}


def _train(model, params, data, step_loss=None, steps=3):
    return local_train(
        model,
        params,
        data,
        steps=steps,
        batch_size=8,
        lr=1e-2,
        weight_decay=0.0,
        seed=0,
        step_loss=step_loss,
    )


# -- PromptFL ------------------------------------------------------------------------------


def test_promptfl_trains_only_the_prompt_and_the_head():
    model, space = build_model(PROMPT)
    assert space.unit_names == ["prompt"] and space.units[0].params == ("prompt",)
    assert model.prompt.shape == (3, TINY_SPEC.hidden_size)
    # the prompt tokens have text positions of their own
    assert model.net.config.max_position_embeddings == TINY_SPEC.max_text_len + 3
    params = space.apply(model, np.array([True]))
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"prompt", *space.head}
    before = _values(model)
    _train(model, params, random_client(16))
    assert _changed(before, model) == {"prompt", *space.head}


def test_the_prompt_changes_the_logits_and_sits_after_cls():
    model, _ = build_model(PROMPT)
    data = random_client(6)
    with torch.no_grad():
        base = data.forward(model, slice(None))
        model.prompt.add_(
            torch.randn(model.prompt.shape, generator=torch.Generator().manual_seed(1))
        )
        moved = data.forward(model, slice(None))
    assert not torch.allclose(base, moved, atol=1e-4)
    words = torch.arange(4.0).view(1, 4, 1).expand(1, 4, TINY_SPEC.hidden_size)
    out = model.insert_prompt(words)
    assert out.shape == (1, 7, TINY_SPEC.hidden_size)
    assert torch.equal(out[0, 0], words[0, 0]) and torch.equal(out[0, 1:4], model.prompt)
    mask = torch.tensor([[1, 1, 0, 0]])
    assert model.prompt_mask(mask).tolist() == [[1, 1, 1, 1, 1, 0, 0]]


def test_lntk_scores_the_prompt_through_the_vmapped_split(caplog):
    model, space = build_model(PROMPT)
    data = random_client(8, seed=2)
    inputs = (data.pixel_values, data.input_ids, data.attention_mask)
    fn = ModelFunction(model, inputs, ["prompt"])
    assert fn.split_used  # the prompt lies in the body, after the frozen prefix
    with torch.no_grad():
        split = fn(fn.primals(["prompt"]), *fn.inputs)
    torch.testing.assert_close(split, model(*inputs), rtol=1e-5, atol=1e-5)
    with caplog.at_level(logging.WARNING):
        fast = score_units(model, space, data, n_samples=8)
    assert "vmap failed" not in caplog.text
    exact = score_units(model, space, data, n_samples=8, exact=True)
    np.testing.assert_allclose(fast.raw, exact.raw, rtol=1e-4)
    assert fast.raw[0] > 0 and fast.normalised.tolist() == [1.0]


def test_prompt_budgets_and_units_in_the_config():
    cfg = load_config(None, ["model.unit_mode=prompt", "federation.strategy=full"])
    assert cfg.model.prompt_length == 8 and cfg.model.num_units == 1  # budgets 4 ignored by full
    assert (
        load_config(None, ["model.unit_mode=prompt", "federation.budgets=1"]).model.num_units == 1
    )
    with pytest.raises(ConfigError, match="exceeds the 1 selectable unit"):
        load_config(None, ["model.unit_mode=prompt", "federation.budgets=2"])
    with pytest.raises(ConfigError, match="prompt_length"):
        load_config(None, ["model.unit_mode=prompt", "model.prompt_length=0"])
    with pytest.raises(ConfigError, match="tiny-vilt only"):
        load_config(None, ["model.name=tiny-blip", "model.unit_mode=dual_adapters"])


def test_both_baselines_are_plain_grid_values(tmp_path):
    from f3ocus_ray.platform.grid_spec import load_grid

    grid_yaml = tmp_path / "grid.yaml"
    grid_yaml.write_text(
        "name: peft\n"
        "base: {model: {num_layers: 4}, federation: {strategy: full, budgets: 2}}\n"
        "axes:\n"
        "  method:\n"
        "    promptfl: {model.unit_mode: prompt, model.prompt_length: 4}\n"
        "    feddat: {model.unit_mode: dual_adapters, model.distill_weight: 0.5}\n"
        "    adapters: {model.unit_mode: adapters}\n"
    )
    grid = load_grid(grid_yaml, cwd=tmp_path)
    assert not grid.refused()
    units = {t.axes["method"]: t.cfg.model for t in grid.trials}
    assert units["promptfl"].unit_mode == "prompt" and units["promptfl"].prompt_length == 4
    assert units["feddat"].unit_mode == "dual_adapters" and units["feddat"].distill_weight == 0.5


# -- FedDAT: the loss --------------------------------------------------------------------


@pytest.mark.parametrize("task", ["vqa", "multilabel"])
def test_mutual_distillation_loss(task):
    g = torch.Generator().manual_seed(0)
    s = torch.randn(6, 5, generator=g, requires_grad=True)
    t = torch.randn(6, 5, generator=g, requires_grad=True)
    y = torch.randint(0, 5, (6,), generator=g) if task == "vqa" else (torch.rand(6, 5) > 0.5)
    y = y.float() if task == "multilabel" else y
    kw = {"task_loss": task_loss}

    # weight 0: exactly two independent CE losses (each logit set gets only its own CE gradient)
    total, parts = mutual_distillation_loss(s, t, y, task, weight=0.0, temperature=2.0, **kw)
    assert torch.equal(total, task_loss(s, y, task) + task_loss(t, y, task))
    gs, gt = torch.autograd.grad(total, (s, t))
    torch.testing.assert_close(gs, torch.autograd.grad(task_loss(s, y, task), s)[0])
    torch.testing.assert_close(gt, torch.autograd.grad(task_loss(t, y, task), t)[0])

    # weight w, temperature T: CE + CE + w T² (KL(t‖s) + KL(s‖t)), each KL non-zero
    total, parts = mutual_distillation_loss(s, t, y, task, weight=0.5, temperature=2.0, **kw)
    assert parts["kd_to_student"] > 1e-4 and parts["kd_to_teacher"] > 1e-4
    if task == "vqa":
        ps, pt = F.softmax(s / 2, -1), F.softmax(t / 2, -1)
        kl_ts = (pt * (pt.log() - ps.log())).sum(-1).mean()
        kl_st = (ps * (ps.log() - pt.log())).sum(-1).mean()
    else:
        ps, pt = torch.sigmoid(s / 2), torch.sigmoid(t / 2)

        def bern(p, q):
            return (p * (p.log() - q.log()) + (1 - p) * ((1 - p).log() - (1 - q).log())).mean()

        kl_ts, kl_st = bern(pt, ps), bern(ps, pt)
    torch.testing.assert_close(parts["kd_to_student"], kl_ts)
    torch.testing.assert_close(parts["kd_to_teacher"], kl_st)
    ce = task_loss(s, y, task) + task_loss(t, y, task)
    torch.testing.assert_close(total, ce + 0.5 * 4 * (kl_ts + kl_st))
    # the KL towards the student sends no gradient into the teacher's logits (and vice versa)
    g_t = torch.autograd.grad(parts["kd_to_student"], t, allow_unused=True)[0]
    assert g_t is None or torch.count_nonzero(g_t) == 0
    # identical predictions: no distillation term
    same = mutual_distillation_loss(s, s.detach(), y, task, weight=1.0, temperature=1.0, **kw)[1]
    assert abs(float(same["kd_to_student"].detach())) < 1e-6


def test_feddat_local_round_trains_shared_local_and_head_only():
    model, space = build_model(DAT)
    mask = np.array([False, True, True, False])
    params = space.apply(model, mask)
    own = [dict(model.named_parameters())[n] for n in private_names(space, mask)]
    for p in own:
        p.requires_grad_(True)
    before = _values(model)
    data = random_client(16)
    stats = _train(model, params + own, data, dat_step_loss(1.0, 2.0))
    shared = {n for u, m in zip(space.units, mask, strict=True) if m for n in u.params}
    assert _changed(before, model) == shared | set(private_names(space, mask)) | set(space.head)
    assert np.isfinite(stats.loss)
    # the two configurations compute different logits once the local adapters moved
    with torch.no_grad():
        student = data.forward(model, slice(None))
        set_teacher(model, True)
        teacher = data.forward(model, slice(None))
        set_teacher(model, False)
    assert not torch.allclose(student, teacher, atol=1e-5)


# -- the engine ----------------------------------------------------------------------------


def _cfg(data_path, tmp_path, *extra):
    return load_config(
        None,
        [
            f"data.path={data_path}",
            f"data.clients={CLIENTS}",
            "data.image_size=32",
            "model.num_layers=2",
            "model.hidden_size=32",
            "model.intermediate_size=64",
            "model.patch_size=8",
            "federation.rounds=2",
            "federation.strategy=full",
            "federation.budgets=1",
            "training.local_steps=2",
            "training.batch_size=8",
            "training.lr=3e-3",
            "engine.num_workers=1",
            "tracking.enabled=false",
            f"output_dir={tmp_path / 'runs'}",
            *extra,
        ],
    )


def _sizes(cfg):
    from f3ocus_ray.platform.prepare import prepare

    model, space = build_model(prepare(cfg).driver_spec.worker.model)
    numel = {n: p.numel() for n, p in model.named_parameters()}
    return model, space, numel


def test_promptfl_runs_end_to_end_and_sends_prompt_and_head(ray_local, small_vqa, tmp_path):
    from f3ocus_ray.platform.experiment import RunOptions, run_experiment

    cfg = _cfg(small_vqa, tmp_path, "model.unit_mode=prompt", "model.prompt_length=4")
    summary = run_experiment(cfg, options=RunOptions(start_ray=False, in_process_driver=True))
    assert len(summary.rounds) == 2
    _, space, numel = _sizes(cfg)
    per_client = numel["prompt"] + sum(numel[n] for n in space.head)
    assert numel["prompt"] == 4 * 32
    for r in summary.rounds:
        assert r["mbit_up"] == pytest.approx(4 * per_client * 32 / 1e6)
        assert r["mbit_down"] == r["mbit_up"]
        assert r["trainable_params"] == 4 * per_client


def test_feddat_round_averages_shared_and_keeps_local_adapters(ray_local, small_vqa, tmp_path):
    """One driver round on the Ray workers against the same clients trained here: the new
    global state is the masked FedAvg of their updates, whose tensors hold no client-specific
    adapter; those stay with the driver, one set per client, different between clients."""
    from f3ocus_ray.fl.driver import FederatedDriver
    from f3ocus_ray.fl.worker import ClientWorker
    from f3ocus_ray.platform.prepare import prepare
    from f3ocus_ray.seeding import derive_seed

    cfg = _cfg(small_vqa, tmp_path, "model.unit_mode=dual_adapters", "federation.strategy=last_k")
    spec = prepare(cfg).driver_spec
    driver = FederatedDriver(spec)
    try:
        initial = dict(driver.state)
        res = driver.run_round()
        after = driver.state_dict()
    finally:
        driver.close()

    worker = ClientWorker(spec.worker)
    versions = dict.fromkeys(initial, 0)
    mask = np.array([False, True])  # last_k, budget 1
    updates = [
        worker.train(c, derive_seed(spec.seed, 0, i), mask, initial, versions)
        for i, c in enumerate(spec.clients)
    ]
    local = set(private_names(worker.space))
    for u in updates:
        assert set(u.tensors) == set(worker.space.trainable(mask))  # shared[1] + head
        assert not local & set(u.tensors) and set(u.private) == local
    expected = masked_fedavg(initial, [(u.tensors, u.n_samples) for u in updates])
    for name, value in expected.items():
        np.testing.assert_array_equal(after["state"][name], value, err_msg=name)
    shared1 = worker.space.units[1].params
    assert not np.array_equal(after["state"][shared1[2]], initial[shared1[2]])
    assert set(after["private"]) == set(spec.clients)
    for c, u in zip(spec.clients, updates, strict=True):
        for name in local:
            np.testing.assert_array_equal(after["private"][c][name], u.private[name])
    up1 = "net.vilt.encoder.layer.1.adapter.local.up.weight"
    a, b = (after["private"][c][up1] for c in spec.clients[:2])
    assert not np.array_equal(a, b)  # trained on different data
    # block 0 was not selected: its local adapter kept its initial (zero) up-projection
    up0 = up1.replace("layer.1", "layer.0")
    assert all(not after["private"][c][up0].any() for c in spec.clients)
    # Mbit counts the shared adapter of block 1 and the head, per client; not the local ones
    sent = sum(initial[n].size for n in worker.space.trainable(mask))
    assert res.mbit_up == pytest.approx(4 * sent * 32 / 1e6)
    own = sum(initial[n].size for n in shared1)  # block 1's local adapter: same shapes
    assert res.trainable_params == 4 * (sent + own)


def test_feddat_runs_end_to_end_and_checkpoints_client_adapters(ray_local, small_vqa, tmp_path):
    from f3ocus_ray.platform.checkpoint import load_checkpoint
    from f3ocus_ray.platform.experiment import RunOptions, run_experiment

    cfg = _cfg(
        small_vqa, tmp_path, "model.unit_mode=dual_adapters", "model.distill_temperature=2.0"
    )
    summary = run_experiment(cfg, options=RunOptions(start_ray=False, in_process_driver=True))
    assert len(summary.rounds) == 2 and 0.0 <= summary.score <= 1.0
    _, space, numel = _sizes(cfg)
    shared = sum(numel[n] for u in space.units for n in u.params)
    head = sum(numel[n] for n in space.head)
    for r in summary.rounds:
        assert r["mbit_up"] == pytest.approx(4 * (shared + head) * 32 / 1e6)
        assert r["trainable_params"] == 4 * (2 * shared + head)  # + the local adapters
    ckpt = load_checkpoint(summary.run_dir / "checkpoint.pt")
    assert set(ckpt["private"]) == set(summary.clients)
    assert all(set(t) == set(private_names(space)) for t in ckpt["private"].values())
    assert not any(n in ckpt["state"] for n in private_names(space))
