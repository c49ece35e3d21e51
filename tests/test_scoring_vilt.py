"""Scoring the tiny ViLT through the engine's entry point: exactness, invariances, hygiene."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from tiny import TINY_SPEC, random_client
from torch import nn

from f3ocus_ray.models import build_model
from f3ocus_ray.scoring import METHODS, ScoringProblem, score_problem, score_units
from f3ocus_ray.scoring.functional import ModelFunction
from f3ocus_ray.task import ClientTensors

torch.set_num_threads(1)

SPEC = TINY_SPEC
_client = random_client


@pytest.fixture(scope="module")
def vilt():
    return build_model(SPEC)


@pytest.fixture(scope="module")
def client():
    return _client(16)


def _snapshot(model: nn.Module):
    return [(n, p.detach().clone(), p.requires_grad) for n, p in model.named_parameters()]


def _assert_same(model: nn.Module, snap) -> None:
    for (name, value, flag), (_, p) in zip(snap, model.named_parameters(), strict=True):
        assert p.requires_grad == flag, name
        assert torch.equal(p.detach(), value), name


def test_prefix_split_reproduces_the_model_and_is_skipped_for_embedding_units(vilt, client):
    model, space = vilt
    inputs = (client.pixel_values, client.input_ids, client.attention_mask)
    fn = ModelFunction(model, inputs, space.all_params)
    assert fn.split_used
    with torch.no_grad():
        split = fn(fn.primals(space.all_params), *fn.inputs)
        whole = model(*inputs)
    torch.testing.assert_close(split, whole, rtol=1e-5, atol=1e-5)
    embeds = ["net.vilt.embeddings.patch_embeddings.projection.weight"]
    assert not ModelFunction(model, inputs, embeds).split_used


@pytest.mark.parametrize("mode", ["loss", "logits"])
@pytest.mark.parametrize("task", ["vqa", "multilabel"])
def test_fast_paths_match_the_exact_reference(vilt, mode, task):
    model, space = vilt
    data = _client(8, task=task, seed=1)
    fast = score_units(model, space, data, mode=mode, n_samples=8, chunk_size=3, tol=1e-8)
    exact = score_units(model, space, data, mode=mode, n_samples=8, exact=True)
    np.testing.assert_allclose(fast.raw, exact.raw, rtol=1e-4)
    assert (fast.raw > 0).all()


class _Adapted(nn.Module):
    """A Pfeiffer-style bottleneck adapter after a block's output projection."""

    def __init__(self, dense: nn.Linear, bottleneck: int = 4):
        super().__init__()
        self.dense = dense
        self.down = nn.Linear(dense.out_features, bottleneck)
        self.up = nn.Linear(bottleneck, dense.out_features)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.dense(h)
        return h + self.up(torch.relu(self.down(h)))


@pytest.mark.parametrize("mode", ["loss", "logits"])
def test_adapter_units_score_their_own_parameters(mode):
    torch.manual_seed(0)
    model, _ = build_model(SPEC)
    for layer in model.net.vilt.encoder.layer:
        layer.output.dense = _Adapted(layer.output.dense)
    data = _client(6)
    units = tuple(
        tuple(
            n
            for n, _ in model.named_parameters()
            if f"layer.{i}.output.dense." in n and (".down." in n or ".up." in n)
        )
        for i in range(SPEC.num_layers)
    )
    assert all(len(u) == 4 for u in units)
    inputs = (data.pixel_values, data.input_ids, data.attention_mask)
    problem = ScoringProblem(
        model, units, inputs, data.targets, nn.functional.cross_entropy, mode=mode, tol=1e-8
    )
    fast = score_problem(problem)
    np.testing.assert_allclose(fast, score_problem(replace(problem, exact=True)), rtol=1e-4)
    assert (fast > 0).all()


def test_scores_are_normalised_and_invariant_to_scaling_the_loss(vilt, client):
    model, space = vilt
    inputs = (client.pixel_values[:8], client.input_ids[:8], client.attention_mask[:8])
    units = tuple(u.params for u in space.units)
    ce = nn.functional.cross_entropy
    base = ScoringProblem(model, units, inputs, client.targets[:8], ce)
    scaled = replace(base, loss_fn=lambda z, t: 3.0 * ce(z, t))
    raw, raw3 = score_problem(base), score_problem(scaled)
    np.testing.assert_allclose(raw3, 9.0 * raw, rtol=1e-5)
    s = score_units(model, space, client, n_samples=8)
    np.testing.assert_allclose(s.raw, raw, rtol=1e-12)
    assert s.normalised.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(s.normalised, raw3 / raw3.sum(), rtol=1e-5)


def test_seeded_subsets_are_deterministic_and_leave_the_callers_rng_alone(vilt, client):
    model, space = vilt
    rng = torch.get_rng_state()
    a = score_units(model, space, client, n_samples=6, seed=3)
    b = score_units(model, space, client, n_samples=6, seed=3)
    c = score_units(model, space, client, n_samples=6, seed=4)
    assert torch.equal(rng, torch.get_rng_state())
    np.testing.assert_array_equal(a.raw, b.raw)
    assert not np.allclose(a.raw, c.raw)
    first = score_units(model, space, client, n_samples=6)
    fields = (client.pixel_values, client.input_ids, client.attention_mask, client.targets)
    head = ClientTensors(*(t[:6] for t in fields), client.task)
    np.testing.assert_allclose(first.raw, score_units(model, space, head).raw, rtol=1e-12)


def test_frozen_flags_and_other_units_do_not_change_a_units_score(vilt, client):
    model, space = vilt
    all_free = score_units(model, space, client, n_samples=8).raw
    flags = [p.requires_grad for p in model.parameters()]
    space.apply(model, np.array([False, True, False, False]))
    try:
        snap = _snapshot(model)
        frozen = score_units(model, space, client, n_samples=8).raw
        _assert_same(model, snap)
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    np.testing.assert_array_equal(all_free, frozen)
    inputs = (client.pixel_values[:8], client.input_ids[:8], client.attention_mask[:8])
    alone = ScoringProblem(
        model, (space.units[2].params,), inputs, client.targets[:8], nn.functional.cross_entropy
    )
    np.testing.assert_allclose(score_problem(alone), all_free[2:3], rtol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_leaves_the_model_as_found(vilt, client, method):
    model, space = vilt
    model.train()
    snap = _snapshot(model)
    try:
        s = score_units(model, space, client, method=method, n_samples=6)
        assert model.training
    finally:
        model.eval()
    _assert_same(model, snap)
    assert s.raw.shape == (4,) and np.isfinite(s.raw).all() and s.seconds > 0
    assert np.abs(s.normalised).sum() == pytest.approx(1.0)


def test_bad_requests_fail_clearly(vilt, client):
    model, space = vilt
    with pytest.raises(ValueError, match="unknown scoring method"):
        score_units(model, space, client, method="lnkt")
    with pytest.raises(ValueError, match="mode"):
        score_units(model, space, client, mode="logit")
    with pytest.raises(ValueError, match="n_samples"):
        score_units(model, space, client, n_samples=0)


def test_scoring_works_inside_a_callers_no_grad(vilt, client):
    model, space = vilt
    expected = score_units(model, space, client, n_samples=6, mode="logits").raw
    with torch.no_grad():
        got = score_units(model, space, client, n_samples=6, mode="logits").raw
    np.testing.assert_array_equal(got, expected)
