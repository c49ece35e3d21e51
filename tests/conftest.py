"""Shared fixtures: one local Ray per test session (loopback only), small synthetic data."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def pytest_collection_modifyitems(items):
    """A test that starts Ray is slow (`make test-fast` leaves it out)."""
    for item in items:
        if "ray_local" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def ray_local():
    import ray

    from f3ocus_ray.platform.ray_session import ensure_ray

    started = ensure_ray(num_cpus=2)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def small_vqa(tmp_path_factory):
    """A small synthetic MedVQA-FL in the on-disk format (all 9 clients, 32 px)."""
    from f3ocus_ray.data import synthesize

    return synthesize(
        tmp_path_factory.mktemp("data") / "medvqa",
        task="vqa",
        seed=0,
        scale=0.001,
        min_per_client=30,
        image_size=32,
    )
