"""What a run records in MLflow: params that apply, names, tags, metrics, summary (no Ray)."""

from __future__ import annotations

import pytest

from f3ocus_ray.config import load_config
from f3ocus_ray.platform import run_record as rr
from f3ocus_ray.platform.paper_tables import Cell, RunFigures, ranking

DEMO = "experiments/demo.yaml"


def test_params_of_a_non_selecting_method_hold_no_selection_or_scoring():
    cfg = load_config(DEMO, ["federation.strategy=last_k"])
    p = rr.run_params(cfg, "my-grid")
    assert not any(k.startswith(("selection.", "scoring.")) for k in p)
    assert p["tracking.experiment"] == "my-grid"  # where the run really is
    assert "data.synthetic.n_clients" not in p  # the vqa task has its own 9 clients
    assert "model.lora_rank" not in p and "model.path" not in p
    assert all(v is not None for v in p.values())


def test_params_of_f3ocus_show_the_scoring_it_really_does():
    cfg = load_config(DEMO, ["federation.strategy=f3ocus"])
    p = rr.run_params(cfg, "g")
    assert p["selection.algorithm"] == "nsga2"
    assert p["scoring.schedule"] == "every_round" and p["scoring.method"] == "lntk"
    lora = rr.run_params(load_config(DEMO, ["model.unit_mode=lora"]), "g")
    assert "model.lora_rank" in lora and "model.adapter_reduction" not in lora


def test_run_names_say_what_varied_and_are_unique():
    f3 = load_config(DEMO, ["federation.strategy=f3ocus", "federation.budgets=3", "seed=1"])
    assert rr.run_name(f3, {"method": "F3OCUS"}) == "f3ocus-nsga2-k3-s1"
    lk = load_config(DEMO, ["federation.strategy=last_k"])
    assert rr.run_name(lk, {"task": "T3 MedVQA"}) == "last-k-k2-4-s0-t3-medvqa"
    assert rr.unique_names(["a", "b", "a"]) == ["a-1", "b", "a-2"]
    tags = rr.run_tags(f3, {"method": "F3OCUS"})
    assert tags == {
        "method": "F3OCUS",
        "selector": "nsga2",
        "scorer": "lntk",
        "unit_mode": "layers",
        "task": "demo",
        "seed": "1",
    }


def test_method_colours_are_distinct_and_in_method_order():
    colours = rr.method_colours(["last-k", "LNTK", "F3OCUS (NSGA-II)", "LNTK"])
    assert list(colours) == ["F3OCUS (NSGA-II)", "LNTK", "last-k"]
    assert len(set(colours.values())) == 3


def test_round_metrics_are_per_client_with_totals_and_no_client_keys():
    m = rr.round_metrics(
        {
            "score": 0.5,
            "mbit_up": 9.0,
            "gflops_train": 3.0,
            "seconds_train": 2.0,
            "seconds": 4.0,
            "client/oct/score": 0.1,
            "selection/hypervolume": 0.7,
        },
        n_clients=3,
    )
    assert m == {
        "score": 0.5,
        "mbit_up": 3.0,
        "mbit_up_total": 9.0,
        "gflops_total": 3.0,
        "seconds_train": 2.0,
        "seconds_round": 4.0,
        "selection_hypervolume": 0.7,  # no prefix: the UI puts prefix sections first
    }


def test_summary_ranks_by_the_mean_of_the_last_three_rounds():
    curve = [(1, 0.2), (2, 0.6), (3, 0.4), (4, 0.5), (5, 0.3)]
    s = rr.summary_metrics(curve, 0.25, {"total_mbit_up": 7.0})
    assert s["score_final"] == 0.3 and s["score_best"] == 0.6 and s["best_round"] == 2
    assert s["score_last3"] == pytest.approx(0.4)
    assert s["score_gap_vs_question_only"] == pytest.approx(0.15)
    assert s["total_mbit_up"] == 7.0
    assert "score_gap_vs_question_only" not in rr.summary_metrics(curve, None, {})


def test_ranking_uses_last_rounds_and_one_seed_prints_no_zero_spread():
    noisy = RunFigures("A", "t", 0.9, [0.1, 0.1, 0.1, 0.9], {})  # a lucky final round
    steady = RunFigures("B", "t", 0.5, [0.5, 0.5, 0.5, 0.5], {})
    header, rows, best = ranking([noisy, steady])
    assert best == "B" and [r[1] for r in rows] == ["B", "A"]
    assert rows[1][2] == f"{(0.1 + 0.1 + 0.9) / 3 * 100:.2f}"
    assert Cell([0.5]).text() == "50.00"
    assert Cell([0.4, 0.6]).text() == "50.00 ± 10.00"
