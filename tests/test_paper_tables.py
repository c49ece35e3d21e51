"""The paper-shaped tables: method labels, Table 1 (mean ± std over seeds), Table 2 (costs)."""

from __future__ import annotations

import pytest

from f3ocus_ray.platform.paper_tables import (
    RunFigures,
    method_label,
    method_order,
    table1,
    table2,
    task_label,
)


@pytest.mark.parametrize(
    ("params", "axes", "label"),
    [
        ({"federation.strategy": "f3ocus", "selection.algorithm": "aco"}, {}, "f3ocus-aco"),
        ({"federation.strategy": "lntk", "model.unit_mode": "layers"}, {}, "lntk"),
        ({"federation.strategy": "lntk", "model.unit_mode": "adapters"}, {}, "lntk + adapters"),
        ({"federation.strategy": "full", "model.unit_mode": "layers"}, {}, "full fine-tuning"),
        # runs logged before the rename of model.units
        ({"federation.strategy": "full", "model.units": "dual_adapters"}, {}, "FedDAT"),
        ({"federation.strategy": "full", "model.unit_mode": "lora"}, {}, "LoRA"),
        ({"federation.strategy": "full", "model.unit_mode": "prompt"}, {}, "PromptFL"),
        ({"federation.strategy": "snip"}, {"method": "SNIP (mine)"}, "SNIP (mine)"),
    ],
)
def test_method_label(params, axes, label):
    assert method_label(params, axes) == label


def test_task_label_prefers_the_task_axis():
    assert task_label({"name": "t3"}, {}) == "t3"
    assert task_label({"name": "t3"}, {"task": "T6"}) == "T6"


def _run(method, task, final, mbit, params=100.0):
    per_round = {"mbit_up": mbit, "trainable_params": params, "seconds_train": 1.0}
    # an early round below, then the last 3 rounds at `final`: the run's score is `final`
    return RunFigures(method, task, final, [final / 2, final, final, final], per_round)


def test_table1_means_and_stds_over_seeds_in_percent():
    runs = [
        _run("lntk", "t3", 0.50, 1.0),
        _run("lntk", "t3", 0.60, 1.0),
        _run("f3ocus-sa", "t3", 0.70, 1.0),
        _run("f3ocus-sa", "t1", 0.40, 1.0),
        _run("last_k", "t3", 0.30, 1.0),
    ]
    header, rows = table1(runs)
    assert header == ["method", "t1", "t3"]
    assert rows == [
        ["f3ocus-sa", "40.00", "70.00"],  # one seed: no "± 0.00"
        ["lntk", "–", "55.00 ± 5.00"],
        ["last_k", "–", "30.00"],
    ]


def test_table2_costs_and_communication_saved_against_full_fine_tuning():
    runs = [
        _run("full fine-tuning", "t3", 0.6, 40.0, 1_250_000),
        _run("f3ocus-nsga2", "t3", 0.5, 0.1, 3125),
        _run("f3ocus-nsga2", "t3", 0.7, 0.3, 9375),
        _run("lntk", "t1", 0.9, 1.0),
    ]
    header, rows = table2(runs, "t3")
    assert header[:3] == ["method", "score (%), mean of last 3 rounds", "Mbit up / client / round"]
    assert header[-1] == "communication vs full FT"
    assert [r[0] for r in rows] == ["f3ocus-nsga2", "full fine-tuning"]
    f3, full = rows
    assert f3[1] == "60.00 ± 10.00" and f3[2] == "0.200" and f3[3] == "6,250"
    assert f3[-1] == "200.0× less" and full[-1] == "1.0× less"


def test_method_order_puts_f3ocus_then_lntk_then_baselines_then_peft():
    got = method_order(["LoRA", "snip", "lntk", "f3ocus-sa", "f3ocus-abc", "last_k"])
    assert got == ["f3ocus-abc", "f3ocus-sa", "lntk", "last_k", "snip", "LoRA"]
    # axis labels: any case, alphabetical without regard to case within a group
    got = method_order(["FishMask", "LNTK", "F3OCUS (SA)", "full fine-tuning", "magnitude"])
    assert got == ["F3OCUS (SA)", "LNTK", "FishMask", "magnitude", "full fine-tuning"]
