"""Big-model training options: bf16 precision (CUDA only), gradient accumulation over
micro-batches, and activation checkpointing of the transformer blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_models_families import random_client as family_client
from test_models_families import spec as family_spec
from tiny import TINY_SPEC, random_client

from f3ocus_ray.config import load_config
from f3ocus_ray.errors import ConfigError
from f3ocus_ray.fl.training import batch_backward, local_train
from f3ocus_ray.models import build_model
from f3ocus_ray.models.checkpointing import activation_checkpointing, checkpointable_blocks


@pytest.fixture(autouse=True)
def one_thread():
    """Float comparisons own their thread count (sums re-associate across threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _grads(spec, data, idx, **kw) -> dict[str, torch.Tensor]:
    model, space = build_model(spec)
    params = space.apply(model, np.ones(space.num_units, dtype=bool))
    torch.manual_seed(0)  # ViLT draws its patch order from the global generator
    loss = batch_backward(model, data, idx, **kw)
    assert np.isfinite(loss)
    return {f"{i}": p.grad.clone() for i, p in enumerate(params) if p.grad is not None}


def _assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys() and a
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("task", ["vqa", "multilabel"])
def test_micro_batches_accumulate_the_whole_batch_gradient(task):
    data = random_client(10, task=task)
    idx = torch.tensor([7, 2, 9, 0, 4, 5, 1])
    whole = _grads(TINY_SPEC, data, idx)
    micro = _grads(TINY_SPEC, data, idx, micro_batch_size=3)  # 3 + 3 + 1: unequal weights
    _assert_close(micro, whole)
    # and the unweighted sum would be wrong: the weighting is what makes them equal
    wrong = {k: v * 3 for k, v in whole.items()}
    with pytest.raises(AssertionError):
        _assert_close(micro, wrong)


def _count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize("name", ["tiny-vilt", "tiny-blip", "tiny-albef", "tiny-llava"])
def test_checkpointing_recomputes_the_blocks_and_keeps_the_gradients(name):
    if name == "tiny-vilt":
        spec, data = TINY_SPEC, random_client(6)
    else:
        spec, data = family_spec(name), family_client(name, 6)
    idx = torch.arange(6)
    plain = _grads(spec, data, idx)

    model, space = build_model(spec)
    params = space.apply(model, np.ones(space.num_units, dtype=bool))
    blocks = checkpointable_blocks(model)
    assert len(blocks) >= space.num_units
    inner = next(m for m in blocks[-1].children())  # a submodule: runs again on recompute
    calls = _count_calls(inner)
    torch.manual_seed(0)
    with activation_checkpointing(model):
        batch_backward(model, data, idx)
    assert calls[0] == 2  # forward, and once more in the backward pass
    got = {f"{i}": p.grad.clone() for i, p in enumerate(params) if p.grad is not None}
    _assert_close(got, plain)
    # on exit the blocks are plain again
    assert all("forward" not in vars(b) for b in blocks)


def test_local_train_with_checkpointing_and_micro_batches_matches_the_plain_run():
    data = random_client(12)

    def train(**kw):
        model, space = build_model(TINY_SPEC)
        params = space.apply(model, np.array([False, True, False, True]))
        start = torch.cat([p.detach().reshape(-1) for p in params])
        stats = local_train(
            model, params, data, steps=3, batch_size=8, lr=1e-3, weight_decay=0.0, seed=0, **kw
        )
        return stats, torch.cat([p.detach().reshape(-1) for p in params]) - start

    plain, moved = train()
    big, moved_big = train(micro_batch_size=3, gradient_checkpointing=True)
    assert big.samples == plain.samples
    assert big.loss == pytest.approx(plain.loss, rel=1e-5)
    # AdamW's first steps divide by |g|: rounding in near-zero gradients moves a few weights
    # visibly, so the whole update is compared, not each weight
    assert float((moved_big - moved).norm() / moved.norm()) < 0.02


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for CPU models")
def test_bf16_is_refused_on_a_cpu_model():
    model, space = build_model(TINY_SPEC)
    params = space.apply(model, np.ones(space.num_units, dtype=bool))
    with pytest.raises(ValueError, match="training.precision: bf16 autocasts on CUDA only"):
        local_train(
            model, params, random_client(4), steps=1, batch_size=4, lr=1e-3,
            weight_decay=0.0, seed=0, precision="bf16",
        )  # fmt: skip


@pytest.mark.parametrize(
    "overrides",
    [
        ["training.precision=bf16"],  # tiny family: CPU unless model.device is cuda
        ["training.precision=bf16", "model.device=cuda"],  # no GPU for the workers
        ["training.precision=bf16", "model.name=vilt", "model.path=CKPT", "model.device=cpu"],
    ],
)
def test_config_refuses_bf16_on_the_cpu(overrides, tmp_path):
    (tmp_path / "config.json").write_text('{"num_hidden_layers": 12}')
    overrides = [o.replace("CKPT", str(tmp_path)) for o in overrides]
    with pytest.raises(ConfigError, match="training.precision"):
        load_config(None, [*overrides, "engine.gpus_per_worker=0"])


def test_config_accepts_bf16_on_a_gpu_and_checks_micro_batches():
    cfg = load_config(
        None,
        ["training.precision=bf16", "model.device=cuda", "engine.gpus_per_worker=0.5"],
    )
    assert cfg.training.precision == "bf16"
    assert load_config(None, []).training.micro_batch_size is None
    with pytest.raises(ConfigError, match=r"training: micro_batch_size \(9\) is larger"):
        load_config(None, ["training.batch_size=8", "training.micro_batch_size=9"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 autocast needs CUDA")
def test_bf16_trains_on_cuda():
    from dataclasses import replace

    spec = replace(TINY_SPEC, device="cuda")
    model, space = build_model(spec)
    params = space.apply(model, np.ones(space.num_units, dtype=bool))
    stats = local_train(
        model, params, random_client(8).to("cuda"), steps=2, batch_size=4, lr=1e-3,
        weight_decay=0.0, seed=0, precision="bf16",
    )  # fmt: skip
    assert np.isfinite(stats.loss) and all(p.dtype == torch.float32 for p in params)


@pytest.mark.parametrize(
    "family", ["tiny-vilt", "tiny-blip", "tiny-albef", "tiny-blip2", "tiny-llava"]
)
def test_gpu_check_script_and_experiment_are_valid(family):
    """bench/gpu_check.sh needs a GPU to run; its shell parses and its experiment validates."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert subprocess.run(["bash", "-n", str(root / "bench/gpu_check.sh")]).returncode == 0
    cfg = load_config(root / "bench/gpu_check.yaml", [f"model.name={family}"])
    assert cfg.training.precision == "bf16" and cfg.model.hidden_size == 768
    assert cfg.engine.num_workers == 2 and cfg.engine.gpus_per_worker == 0.5
    bad = subprocess.run(
        ["bash", str(root / "bench/gpu_check.sh"), "--family", "vilt"], capture_output=True
    )
    assert bad.returncode == 2 and b"not built from config" in bad.stderr


def test_the_engine_worker_trains_with_the_big_model_options(small_vqa):
    """config -> prepare -> ClientWorker.train (no Ray): the training options reach the step."""
    from f3ocus_ray.config import parse_config
    from f3ocus_ray.fl.worker import ClientWorker
    from f3ocus_ray.platform.prepare import prepare

    def train(**training):
        raw = {
            "data": {"path": str(small_vqa), "image_size": 32, "clients": ["oct"]},
            "model": {"hidden_size": 32, "num_layers": 4, "num_heads": 2, "intermediate_size": 64},
            "federation": {"budgets": 2, "strategy": "last_k"},
            "training": {"local_steps": 2, "batch_size": 8, **training},
        }
        worker = ClientWorker(prepare(parse_config(raw)).driver_spec.worker)
        state = worker.initial_state()
        versions = dict.fromkeys(state, 0)
        return worker.train("oct", 1, np.array([False, False, True, True]), state, versions)

    plain = train()
    big = train(micro_batch_size=3, gradient_checkpointing=True)
    assert big.loss == pytest.approx(plain.loss, rel=1e-5)
    # checkpointing recomputes the blocks' forward: more FLOPs counted for the same samples
    assert big.gflops > plain.gflops
