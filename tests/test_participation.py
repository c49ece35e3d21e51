"""Partial participation (federation.clients_per_round) and client affinity in dispatch.

The round logic runs on a stub executor (no model): its updates are functions of the job's
arguments, so FedAvg, scoring and selection can be checked against a hand computation. One
slow test runs the tiny ViLT on Ray and in-process.
"""

from __future__ import annotations

import numpy as np
import pytest

from f3ocus_ray.config import ScoringConfig, SelectionConfig, TrainingConfig, load_config
from f3ocus_ray.errors import ConfigError
from f3ocus_ray.fl.executors import Affinity, Job, LongestFirst, RayPool
from f3ocus_ray.fl.round import DriverSpec, Federation
from f3ocus_ray.fl.worker import ClientUpdate, WorkerSpec
from f3ocus_ray.seeding import derive_participants, derive_seed

UNITS = 4


class StubExecutor:
    """Runs train/evaluate/score jobs as pure functions of their arguments (no model)."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []  # (method, client)
        self._affinity = Affinity()

    def share(self, obj):
        return obj

    def initial_state(self):
        return {"unit": np.zeros(3, dtype=np.float32), "head": np.ones(2, dtype=np.float32)}

    def affinity_hits(self):
        return self._affinity.hits

    def close(self):
        pass

    def run(self, jobs):
        out = []
        for job in jobs:
            self._affinity.note(job.client, 0)
            self.calls.append((job.method, job.args[0]))
            out.append(getattr(self, job.method)(*job.args))
        return out

    @staticmethod
    def train(client, seed, mask, state, versions, private):
        # the client's update: its seed's draw, so the test can recompute it
        value = np.random.default_rng(seed).random(3).astype(np.float32)
        n = int(client.removeprefix("c")) + 1  # client ci has i + 1 samples
        tensors = {"head": state["head"] + 1}
        if mask.any():
            tensors["unit"] = value
        return ClientUpdate(tensors, n, loss=0.5, seconds=0.0, steps=1, gflops=0.25)

    @staticmethod
    def evaluate(client, seed, state, versions, private):
        return {"correct": 1.0, "n": 2.0, "loss_sum": 1.0}

    @staticmethod
    def score(client, seed, state, versions):
        return np.random.default_rng(seed).random(UNITS) + 0.1, 0.0


def stub_spec(n=10, strategy="random", seed=3, **kw) -> DriverSpec:
    worker = WorkerSpec(
        model=None,
        data_path="",
        image_size=32,
        tokenizer_json="",
        max_text_len=8,
        training=TrainingConfig(local_steps=1),
        torch_threads=1,
    )
    return DriverSpec(
        clients=[f"c{i}" for i in range(n)],
        budgets=[1 + i % UNITS for i in range(n)],
        n_train=[i + 1 for i in range(n)],
        n_test=[2] * n,
        task="vqa",
        strategy=strategy,
        seed=seed,
        worker=worker,
        pool=RayPool(1, 1.0, 0.0, 0, {}),
        unit_names=[f"u{i}" for i in range(UNITS)],
        **kw,
    )


# -- sampling ---------------------------------------------------------------------------------
def test_participants_are_seeded_sorted_and_all_means_no_draw():
    a = derive_participants(7, 3, 1000, 50)
    assert (a == derive_participants(7, 3, 1000, 50)).all()
    assert len(set(a.tolist())) == 50 and (np.diff(a) > 0).all()
    assert (a != derive_participants(7, 4, 1000, 50)).any()  # a new draw each round
    assert (a != derive_participants(8, 3, 1000, 50)).any()
    assert (derive_participants(7, 3, 9, 9) == np.arange(9)).all()
    with pytest.raises(ValueError):
        derive_participants(7, 3, 9, 10)


def test_clients_per_round_config_count_or_fraction():
    cfg = load_config(None, ["federation.clients_per_round=0.25"])
    assert cfg.clients_per_round_for(10) == (2, 10)  # round(2.5) = 2, evaluation: all
    assert load_config(None, []).clients_per_round_for(10) == (10, 10)
    cfg = load_config(
        None, ["federation.clients_per_round=3", "federation.eval_clients_per_round=1.0"]
    )
    assert cfg.clients_per_round_for(10) == (3, 10)
    with pytest.raises(ConfigError, match="federation.clients_per_round: 11 is more than the 10"):
        load_config(None, ["federation.clients_per_round=11"]).clients_per_round_for(10)
    for bad in ("0", "0.0", "1.5", "-2", "true", "'3'"):
        with pytest.raises(ConfigError, match="federation.clients_per_round"):
            load_config(None, [f"federation.clients_per_round={bad}"])


# -- the round --------------------------------------------------------------------------------
def test_fedavg_mbit_and_gflops_cover_the_participants_alone():
    spec = stub_spec(n=10, clients_per_round=4, eval_clients_per_round=3, rounds=5)
    ex = StubExecutor()
    fed = Federation(spec, ex)
    res = fed.run_round()
    part = derive_participants(spec.seed, 0, 10, 4)
    assert res.participants == [f"c{i}" for i in part]
    assert (
        res.masks.shape == (4, UNITS) and (res.masks.sum(1) == np.array(spec.budgets)[part]).all()
    )
    # hand FedAvg: the participants' unit tensors weighted by their samples (i + 1)
    values = [np.random.default_rng(derive_seed(spec.seed, 0, int(i))).random(3) for i in part]
    weights = part + 1.0
    expected = (
        sum(w * v.astype(np.float32) for w, v in zip(weights, values, strict=True)) / weights.sum()
    )
    np.testing.assert_allclose(fed.state["unit"], expected, rtol=1e-6)
    np.testing.assert_array_equal(fed.state["head"], 2.0)
    assert fed.version == {"unit": 1, "head": 1}
    assert res.mbit_up == pytest.approx(4 * (3 + 2) * 32 / 1e6)
    assert set(res.client_gflops) == set(res.train_loss) == set(res.participants)
    m = res.metrics()
    assert m["participants"] == 4 and m["eval_clients"] == 3 and m["gflops_train"] == 1.0
    assert len(res.client_score) == 3 and sorted(m) == sorted(set(m))
    trained = [c for method, c in ex.calls if method == "train"]
    assert trained == res.participants


def test_every_client_is_the_old_round_whatever_the_setting_says():
    """clients_per_round null, = the client count, or 1.0: every client, no draw, the seeds
    and FedAvg of a run without the option."""
    runs = []
    for per_round in (None, 6, 6):
        fed = Federation(stub_spec(n=6, clients_per_round=per_round), StubExecutor())
        runs.append([fed.run_round() for _ in range(2)] + [fed.state])
    for other in runs[1:]:
        for a, b in zip(runs[0][:2], other[:2], strict=True):
            assert a.participants == b.participants == [f"c{i}" for i in range(6)]
            assert (a.masks == b.masks).all() and a.score == b.score
        np.testing.assert_array_equal(runs[0][2]["unit"], other[2]["unit"])
    # round 2's FedAvg by hand over all 6 clients
    values = [np.random.default_rng(derive_seed(3, 1, i)).random(3) for i in range(6)]
    expected = sum((i + 1) * v.astype(np.float32) for i, v in enumerate(values)) / 21
    masks = runs[0][1].masks.any(1)  # random strategy: every budget >= 1, every client sends
    assert masks.all()
    np.testing.assert_allclose(runs[0][2]["unit"], expected, rtol=1e-6)


def test_f3ocus_refines_the_participants_masks_under_their_budgets():
    kw = dict(clients_per_round=3, scoring=ScoringConfig(), selection=SelectionConfig(max_evals=50))
    ex = StubExecutor()
    fed = Federation(stub_spec(n=8, strategy="f3ocus", **kw), ex)
    res = fed.run_round()
    assert [c for method, c in ex.calls if method == "score"] == res.participants
    assert res.raw_scores.shape == (3, UNITS) and res.pareto_png is not None
    budgets = np.array(fed.spec.budgets)[[int(c[1:]) for c in res.participants]]
    assert (res.masks.sum(1) == budgets).all()
    assert np.isnan(fed.raw_scores).any(axis=1).sum() == 5  # the others: no score, no mask


def test_scoring_covers_the_participants_and_resume_samples_the_same():
    kw = dict(clients_per_round=3, rounds=4, scoring=ScoringConfig(schedule="once"))
    ex = StubExecutor()
    fed = Federation(stub_spec(n=8, strategy="lntk", **kw), ex)
    first = fed.run_round()
    scored = [c for method, c in ex.calls if method == "score"]
    assert scored == first.participants  # round 1: the schedule's scoring, participants only
    saved = fed.state_dict()

    ex.calls.clear()
    second = fed.run_round()
    new = [c for c in second.participants if c not in first.participants]
    assert new  # (this seed draws someone new)
    # not due ("once"), but a participant never scored scores before the selection needs it
    assert [c for method, c in ex.calls if method == "score"] == new
    assert second.raw_scores.shape == (3, UNITS)
    later = [fed.run_round() for _ in range(2)]
    assert later[0].metrics()["eval_clients"] == 8 == later[-1].metrics()["eval_clients"]

    again = Federation(stub_spec(n=8, strategy="lntk", **kw), StubExecutor())
    again.load_state_dict(saved)
    resumed = [again.run_round() for _ in range(3)]
    for a, b in zip([second, *later], resumed, strict=True):
        assert a.participants == b.participants and (a.masks == b.masks).all()
    np.testing.assert_array_equal(fed.state["unit"], again.state["unit"])
    np.testing.assert_array_equal(fed.raw_scores, again.raw_scores)


def test_driver_holds_nothing_per_round():
    """Rounds add no per-client state: masks are the round's, scores one row per client."""
    spec = stub_spec(n=2000, strategy="lntk", clients_per_round=5, eval_clients_per_round=5,
                     scoring=ScoringConfig(schedule="every_round"), rounds=3)  # fmt: skip
    fed = Federation(spec, StubExecutor())
    results = [fed.run_round() for _ in range(3)]
    assert results[1].masks.shape == (5, UNITS) and fed.raw_scores.shape == (2000, UNITS)
    assert not fed.private and len(results[1].client_score) == 5
    assert len(results[2].client_score) == 2000  # the last round evaluates every client


# -- client affinity --------------------------------------------------------------------------
def simulate(jobs, n_workers, affinity):
    """Dispatch `jobs` on workers that each take `cost` seconds per job; (worker per job,
    makespan)."""
    plan = LongestFirst(jobs, affinity)
    free_at = [0.0] * n_workers
    idle, now, where = list(range(n_workers)), 0.0, [None] * len(jobs)
    while plan.left:
        while plan.left and idle:
            j, w = plan.take(idle)
            idle.remove(w)
            where[j], free_at[w] = w, now + jobs[j].cost
        now = min(free_at[w] for w in range(n_workers) if w not in idle)
        idle += [w for w in range(n_workers) if free_at[w] == now and w not in idle]
    return where, max(free_at)


def test_affinity_sends_a_client_back_without_unbalancing_the_round():
    costs = {"a": 4.0, "b": 4.0, "c": 3.9, "d": 2.0, "e": 1.0}
    jobs = [Job("train", (c,), cost, client=c) for c, cost in costs.items()]
    affinity = Affinity()
    first, span = simulate(jobs, 2, affinity)
    _, plain = simulate(jobs, 2, None)
    assert span == plain and affinity.hits == 0
    # the next round, in another order: every client whose job keeps the order goes back
    again, span2 = simulate(list(reversed(jobs)), 2, affinity)
    assert span2 == plain
    assert dict(zip(reversed(costs), again, strict=True)) == dict(zip(costs, first, strict=True))
    assert affinity.hits == len(jobs)


def test_affinity_never_waits_for_a_busy_worker_or_takes_a_short_job_first():
    affinity = Affinity()
    affinity.note("long", 0)
    affinity.note("short", 1)
    jobs = [Job("train", (c,), cost, client=c) for c, cost in (("long", 5.0), ("short", 1.0))]
    plan = LongestFirst(jobs, affinity)
    # worker 1 is free, worker 0 (which served "long") is busy: 1 takes the longest job
    assert plan.take([1]) == (0, 1)
    assert plan.take([0]) == (1, 0)
    assert affinity.hits == 0


def eval_jobs(state, versions, clients):
    return [Job("evaluate", (c, 0, state, versions), client=c) for c in clients]


@pytest.mark.slow
def test_partial_participation_same_on_ray_and_in_process_and_affinity(
    ray_local, small_vqa, tmp_path
):
    from f3ocus_ray.fl.executors import InProcessExecutor, RayExecutor
    from f3ocus_ray.platform.prepare import prepare

    cfg = load_config(
        None,
        [
            f"data.path={small_vqa}",
            "data.clients=[chest_xray, oct, dermatoscope, blood_microscope]",
            "data.image_size=32",
            "model.num_layers=4",
            "federation.budgets=[2, 1, 2, 1]",
            "federation.strategy=random",
            "federation.clients_per_round=2",
            "federation.eval_clients_per_round=0.5",
            "federation.rounds=3",
            "training.local_steps=2",
            "engine.num_workers=2",
            f"output_dir={tmp_path}",
        ],
    )
    spec = prepare(cfg).driver_spec
    two = spec.clients[:2]
    results, evals = {}, {}
    for kind in ("ray", "local"):
        ex = (
            RayExecutor(spec.worker, spec.pool) if kind == "ray" else InProcessExecutor(spec.worker)
        )
        try:
            fed = Federation(spec, ex)
            results[kind] = ([fed.run_round() for _ in range(2)], fed.state)
            state, v = ex.share(fed.state), dict(fed.version)
            if kind == "ray":  # two clients again, in the other order: back where they ran
                ex.run(eval_jobs(state, v, two))
                first, hits = dict(zip(two, ex.last_workers, strict=True)), ex.affinity_hits()
            evals[kind] = ex.run(eval_jobs(state, v, two[::-1]))
            if kind == "ray":
                assert dict(zip(two[::-1], ex.last_workers, strict=True)) == first
                assert ex.affinity_hits() - hits == 2
        finally:
            ex.close()
    assert evals["ray"] == evals["local"]  # whichever worker ran them
    (ray_rounds, ray_state), (local_rounds, local_state) = results["ray"], results["local"]
    for a, b in zip(ray_rounds, local_rounds, strict=True):
        assert a.participants == b.participants and len(a.participants) == 2
        assert a.score == b.score and a.train_loss == b.train_loss and a.mbit_up == b.mbit_up
        assert len(a.client_score) == 2 and a.client_score == b.client_score
    m = ray_rounds[1].metrics()  # 2 trained, 2 evaluated; some may go back to their worker
    assert m["engine/jobs"] == 4 and 0 <= m["engine/affinity_hits"] <= 4
    for name in local_state:
        np.testing.assert_array_equal(ray_state[name], local_state[name])
