"""The command line: user errors are one line on stderr and exit code 2, and leave nothing."""

from __future__ import annotations

import socket
import time

import pytest

from f3ocus_ray.cli import main


@pytest.mark.parametrize(
    "yaml_text, overrides, expected",
    [
        ("training:\n  lrr: 1\n", [], "training.lrr: unknown key; did you mean 'training.lr'?"),
        ("federation:\n  budgets: 40\n", [], "budget 40 exceeds the 12 selectable layers"),
        ("{}\n", ["federation.rounds=0"], "federation.rounds"),
        ("{}\n", ["data.path=/does/not/exist"], "data.path: folder not found"),
        ("", [], "the config file is empty"),
        (b"name: caf\xe9\n", [], "not UTF-8 text (byte 9)"),
        ("federation:\n  rounds: 2\n  rounds: 3\n", [], "duplicate key 'rounds'"),
        ("seed: -1\n", [], "seed: Input should be greater than or equal to 0"),
        ("model:\n  init_seed: 4294967296\n", [], "model.init_seed: Input should be less than"),
        ("training:\n  lr: .nan\n", [], "training.lr: Input should be a finite number"),
        ("{}\n", ["training.lr=.inf"], "training.lr: Input should be a finite number"),
        ("data:\n  image_size: 100000\n", [], "data.image_size: Input should be less than"),
        ("name: ../../x\n", [], "name: String should match pattern"),
        ("name: ..\n", [], "name: String should match pattern"),
    ],
)
def test_config_errors_exit_2_and_create_nothing(tmp_path, capsys, yaml_text, overrides, expected):
    cfg = tmp_path / "exp.yaml"
    db = tmp_path / "mlflow.db"
    cfg.write_bytes(yaml_text if isinstance(yaml_text, bytes) else yaml_text.encode())
    args = ["run", str(cfg), "--tracking-uri", f"sqlite:///{db}"]
    args += [f"--set=output_dir={tmp_path / 'runs'}", f"--set=data.cache_dir={tmp_path / 'data'}"]
    for o in overrides:
        args.append(f"--set={o}")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not db.exists() and not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "override, expected",
    [
        ("engine.num_workers=64", "engine.cpus_per_worker: the workers need 64 CPU at once"),
        ("engine.gpus_per_worker=1", "engine.gpus_per_worker: the workers need 2 GPU at once"),
        ("engine.address=127.0.0.1:{port}", "engine.address: no Ray cluster answers at"),
        ("tracking.uri=http://127.0.0.1:{port}", "tracking.uri: no MLflow server answers at"),
    ],
)
def test_what_the_machine_or_network_cannot_serve_is_refused_first(
    tmp_path, capsys, override, expected
):
    """Workers that cannot fit (Ray would wait forever), and endpoints that do not answer (a
    wait of minutes) are refused in seconds, before any data, run folder or MLflow run."""
    db = tmp_path / "mlflow.db"
    args = ["run", "experiments/demo.yaml", f"--set=tracking.uri=sqlite:///{db}"]
    args += [f"--set=output_dir={tmp_path / 'runs'}", f"--set=data.cache_dir={tmp_path / 'data'}"]
    args.append("--set=" + override.format(port=_closed_port()))  # the last word on any key
    t0 = time.monotonic()
    assert main(args) == 2
    assert time.monotonic() - t0 < 30
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1
    assert not db.exists() and not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


def test_missing_config_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_unknown_client_budget_and_participant_counts_refused_before_ray(
    tmp_path, capsys, small_vqa
):
    common = [
        f"--set=data.path={small_vqa}",
        f"--set=output_dir={tmp_path / 'runs'}",
        "--set=data.image_size=32",
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'm.db'}",
    ]
    assert main(["run", "experiments/demo.yaml", *common, "--set=data.clients=[oct, retina]"]) == 2
    assert "data.clients: unknown client 'retina'" in capsys.readouterr().err
    assert main(["run", "experiments/demo.yaml", *common, "--set=federation.budgets=[1,2]"]) == 2
    assert "federation.budgets: 2 budgets given for 9 clients" in capsys.readouterr().err
    too_many = "--set=federation.clients_per_round=10"
    assert main(["run", "experiments/demo.yaml", *common, too_many]) == 2
    assert "federation.clients_per_round: 10 is more than the 9 clients" in capsys.readouterr().err
    assert not (tmp_path / "m.db").exists() and not (tmp_path / "runs").exists()


def test_data_synth_writes_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "set"
    args = [
        "data",
        "synth",
        "--out",
        str(out),
        "--scale",
        "0.0002",
        "--min-per-client",
        "5",
        "--image-size",
        "16",
    ]
    assert main(args) == 0
    assert (out / "annotations.jsonl").is_file()
    before = (out / "annotations.jsonl").read_bytes()
    assert main(args) == 2
    assert "error: " in capsys.readouterr().err
    assert (out / "annotations.jsonl").read_bytes() == before
