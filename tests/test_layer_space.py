import numpy as np
import pytest
import torch
from tiny import TINY_SPEC, random_client

from f3ocus_ray.models import build_model

SPEC = TINY_SPEC


def test_units_are_the_encoder_blocks_in_order():
    model, space = build_model(SPEC)
    assert space.unit_names == [f"net.vilt.encoder.layer.{i}" for i in range(4)]
    for i, u in enumerate(space.units):
        assert all(n.startswith(f"net.vilt.encoder.layer.{i}.") for n in u.params)
    # every parameter is a unit's, the head's, or frozen embeddings
    frozen = {n for n, _ in model.named_parameters()} - set(space.all_params)
    assert frozen and all(n.startswith("net.vilt.embeddings.") for n in frozen)
    assert space.unit_sizes(model).tolist() == [space.unit_sizes(model)[0]] * 4


def test_builds_identically_for_a_seed():
    a, _ = build_model(SPEC)
    b, _ = build_model(SPEC)
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(pa, pb), na


@pytest.mark.parametrize("train_head", [True, False])
def test_mask_trains_exactly_the_selected_blocks(train_head):
    model, space = build_model(SPEC)
    mask = np.array([False, True, False, True])
    params = space.apply(model, mask, train_head=train_head)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = set(space.units[1].params) | set(space.units[3].params)
    if train_head:
        expected |= set(space.head)
    assert trainable == expected
    assert len(params) == len(expected)

    # one optimiser step moves exactly those parameters
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(params, lr=0.1)
    x = torch.randn(3, 3, 32, 32)
    ids = torch.randint(0, 50, (3, 8))
    model(x, ids, torch.ones_like(ids)).square().sum().backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == expected


def test_bad_mask_shape_refused():
    _, space = build_model(SPEC)
    with pytest.raises(ValueError, match="mask shape"):
        space.trainable(np.ones(3, dtype=bool))


def test_adapter_units_train_only_the_selected_adapters():
    from dataclasses import replace

    plain, _ = build_model(SPEC)
    model, space = build_model(replace(SPEC, unit_mode="adapters", adapter_reduction=4))
    assert space.unit_names == [f"net.vilt.encoder.layer.{i}.adapter" for i in range(4)]
    # each unit is its adapter's own parameters: 32 -> 8 -> 32
    assert space.unit_sizes(model).tolist() == [32 * 8 + 8 + 8 * 32 + 32] * 4

    # fresh adapters are the identity: same logits as the model without them
    x, ids = torch.randn(2, 3, 32, 32), torch.randint(0, 50, (2, 8))
    torch.manual_seed(0)
    a = plain(x, ids, torch.ones_like(ids))
    torch.manual_seed(0)
    b = model(x, ids, torch.ones_like(ids))
    torch.testing.assert_close(a, b)

    mask = np.array([True, False, False, True])
    params = space.apply(model, mask)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(params, lr=0.1)
    for _ in range(2):  # the first step moves the zero-initialised up-projections
        opt.zero_grad()
        model(x, ids, torch.ones_like(ids)).square().sum().backward()
        opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    expected = set(space.units[0].params) | set(space.units[3].params) | set(space.head)
    assert changed == expected


def test_lora_units_are_each_blocks_lora_matrices():
    from dataclasses import replace

    model, space = build_model(replace(SPEC, unit_mode="lora", lora_rank=2))
    for i, u in enumerate(space.units):
        # query and value, A (2 x 32) and B (32 x 2) each
        assert sorted(n.split(".")[-4] + "." + n.split(".")[-3] for n in u.params) == [
            "query.lora_A",
            "query.lora_B",
            "value.lora_A",
            "value.lora_B",
        ]
        assert all(n.startswith(f"net.vilt.encoder.layer.{i}.") for n in u.params)
    assert space.unit_sizes(model).tolist() == [4 * 2 * 32] * 4
    params = space.apply(model, np.array([False, True, False, False]))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(space.units[1].params) | set(space.head) and len(params) == len(
        trainable
    )


@pytest.mark.parametrize("units", ["adapters", "lora"])
def test_lntk_scores_adapter_units_fast_path_equals_exact(units):
    from dataclasses import replace

    from f3ocus_ray.scoring import score_units

    torch.set_num_threads(1)
    model, space = build_model(replace(SPEC, unit_mode=units, lora_rank=2, adapter_reduction=4))
    data = random_client(6)
    fast = score_units(model, space, data, n_samples=6, seed=0)
    exact = score_units(model, space, data, n_samples=6, seed=0, exact=True)
    np.testing.assert_allclose(fast.raw, exact.raw, rtol=1e-4)
    assert (fast.raw > 0).all() and fast.normalised.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "units, kept",
    [("layernorm", lambda n: ".layernorm_" in n), ("bias", lambda n: n.endswith(".bias"))],
)
def test_layernorm_and_bias_units_hold_only_those_parameters(units, kept):
    from dataclasses import replace

    model, space = build_model(replace(SPEC, unit_mode=units))
    blocks = [n for n, _ in model.named_parameters() if n.startswith("net.vilt.encoder.layer.")]
    assert sorted(n for u in space.units for n in u.params) == sorted(filter(kept, blocks))
    assert all(u.params for u in space.units)
