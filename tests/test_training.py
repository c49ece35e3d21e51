"""Local training: FLOP accounting measured with torch's FlopCounterMode."""

import numpy as np
import pytest
import torch
from tiny import TINY_SPEC, random_client
from torch.utils.flop_counter import FlopCounterMode

from f3ocus_ray.fl.training import evaluate, local_train
from f3ocus_ray.models import build_model
from f3ocus_ray.task import task_loss

SPEC = TINY_SPEC


def _data(n: int):
    return random_client(n)


def _train(mask, data, steps, count=True):
    model, space = build_model(SPEC)
    params = space.apply(model, np.asarray(mask, dtype=bool))
    return local_train(
        model,
        params,
        data,
        steps=steps,
        batch_size=8,
        lr=1e-3,
        weight_decay=0.0,
        seed=0,
        count_flops=count,
    )


def test_flops_per_sample_match_a_direct_count_and_grow_with_depth():
    data = _data(20)
    stats = _train([False, False, True, True], data, steps=3)
    assert stats.samples == 8 + 8 + 4  # the epoch's last batch is smaller

    model, space = build_model(SPEC)
    space.apply(model, np.array([False, False, True, True]))
    torch.manual_seed(0)
    with FlopCounterMode(display=False) as fc:
        idx = torch.arange(8)
        task_loss(data.forward(model, idx), data.targets[idx], "vqa").backward()
    assert stats.flops_per_sample == fc.get_total_flops() / 8

    # training the first block needs the backward pass through every block above it
    deep = _train([True, False, False, False], data, steps=1)
    assert deep.flops_per_sample > stats.flops_per_sample


@pytest.fixture
def one_thread():
    """Exact float comparisons own their thread count (sums re-associate across threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_counting_flops_changes_nothing_in_training(one_thread):
    data = _data(16)
    torch.manual_seed(1)  # the caller's generator state must not matter (ViLT's patch order)
    a = _train([False, True, False, True], data, steps=4, count=True)
    torch.manual_seed(2)
    b = _train([False, True, False, True], data, steps=4, count=False)
    assert a.loss == b.loss and b.flops_per_sample is None


def test_training_and_evaluation_own_their_seeding(one_thread):
    """The same seed gives the same numbers whatever the caller's torch generator holds, and
    the caller's generator is left as found."""
    data = _data(16)
    model, space = build_model(SPEC)
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    first = evaluate(model, data, 8, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(6)
    assert evaluate(model, data, 8, seed=3) == first

    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    _train([True, False, False, False], data, steps=2)
    assert torch.equal(torch.random.get_rng_state(), state)
