import pytest

from f3ocus_ray.config import ConfigError, load_config


def refusal(tmp_path, yaml_text: str, overrides=()) -> str:
    p = tmp_path / "exp.yaml"
    p.write_text(yaml_text)
    with pytest.raises(ConfigError) as e:
        load_config(p, list(overrides))
    return str(e.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("training:\n  lrr: 0.1\n", "training.lrr: unknown key; did you mean 'training.lr'?"),
        ("trainig:\n  lr: 0.1\n", "trainig: unknown key; did you mean 'training'?"),
        ("training:\n  lr: -0.1\n", "training.lr: Input should be greater than 0"),
        (
            "federation:\n  rounds: 0\n",
            "federation.rounds: Input should be greater than or equal to 1",
        ),
        ("federation:\n  budgets: 13\n", "budget 13 exceeds the 12 selectable layers"),
        ("federation:\n  budgets: [2, 0, 3]\n", "federation.budgets: budget 0 is below 1"),
        ("data:\n  clients: []\n", "data.clients: zero clients selected"),
        ("data:\n  path: /no/such/folder\n", "data.path: folder not found: /no/such/folder"),
        ("model:\n  num_layers: true\n", "model.num_layers: Input should be a valid integer"),
        ("training:\n  batch_size: '16'\n", "training.batch_size: Input should be a valid integer"),
        (
            "federation:\n  strategy: best\n",
            "federation.strategy: unknown strategy 'best'; choose from full,",
        ),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("training: [\n", "not valid YAML"),
    ],
)
def test_refusals_name_the_field(tmp_path, text, expected):
    assert expected in refusal(tmp_path, text)


def test_budget_exceeding_a_smaller_model(tmp_path):
    msg = refusal(tmp_path, "model:\n  num_layers: 4\nfederation:\n  budgets: [2, 5]\n")
    assert "budget 5 exceeds the 4 selectable layers" in msg


def test_overrides_parse_yaml_values(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("training:\n  lr: 1e-3\n")
    cfg = load_config(p, ["federation.budgets=[1,2,3]", "training.lr=2e-4", "engine.num_workers=1"])
    assert cfg.training.lr == pytest.approx(2e-4)
    assert cfg.federation.budgets == [1, 2, 3]
    assert cfg.engine.num_workers == 1
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(p, ["federation.rounds"])
    with pytest.raises(
        ConfigError, match="federation.round: unknown key; did you mean 'federation.rounds'"
    ):
        load_config(p, ["federation.round=3"])


def test_scientific_floats_and_roundtrip(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("training:\n  lr: 1e-3\n  weight_decay: 0\n")
    cfg = load_config(p)
    assert cfg.training.lr == pytest.approx(1e-3)
    again = tmp_path / "again.yaml"
    again.write_text(cfg.to_yaml())
    assert load_config(again) == cfg
    assert cfg.flat()["training.lr"] == pytest.approx(1e-3)


def test_budgets_per_client_must_match_clients():
    cfg = load_config(None, ["federation.budgets=[1,2]"])
    assert cfg.budgets_for(2) == [1, 2]
    with pytest.raises(ConfigError, match="2 budgets given for 3 clients"):
        cfg.budgets_for(3)
    assert load_config(None, ["federation.budgets=3"]).budgets_for(4) == [3, 3, 3, 3]


def test_demo_config_is_valid():
    cfg = load_config("experiments/demo.yaml")
    assert cfg.federation.rounds >= 1
    assert len(cfg.budgets_for(9)) == 9


def test_every_experiment_file_is_valid(tmp_path):
    from pathlib import Path

    import yaml

    from f3ocus_ray.platform.grid_spec import load_grid

    files, grids = [], []
    for p in sorted(Path("experiments").glob("*.yaml")):
        (grids if "axes" in yaml.safe_load(p.read_text()) else files).append(p)
    assert len(files) >= 6 and len(grids) >= 3
    for g in grids:  # every trial of a runnable grid parses (paper_grid names future models)
        grid = load_grid(g)
        assert grid.trials and (g.stem == "paper_grid" or not grid.refused()), g
    for f in files:
        # real-data variants name a cluster path; point them at an existing folder here
        overrides = [f"data.path={tmp_path}"] if "_real" in f.stem else []
        cfg = load_config(f, overrides)
        assert cfg.federation.rounds >= 1, f


def test_patch_size_must_divide_the_image_size_of_a_tiny_model():
    with pytest.raises(
        ConfigError, match=r"model.patch_size: 8 must divide data.image_size \(30\)"
    ):
        load_config(None, ["data.image_size=30", "model.patch_size=8"])
    assert load_config(None, ["data.image_size=32", "model.patch_size=8"]).model.patch_size == 8


def test_dotted_keys_are_set_and_read_in_one_place():
    from f3ocus_ray.config import get_dotted, set_dotted

    raw: dict = {"model": {"name": "tiny-vilt"}}
    set_dotted(raw, "model.hidden_size", 32)
    set_dotted(raw, "federation.rounds", 2)
    assert raw == {"model": {"name": "tiny-vilt", "hidden_size": 32}, "federation": {"rounds": 2}}
    assert get_dotted(raw, "federation.rounds") == 2
    assert get_dotted(raw, "federation.budgets", 4) == 4
    with pytest.raises(ConfigError, match="model.name.x: model.name is not a section"):
        set_dotted(raw, "model.name.x", 1)
