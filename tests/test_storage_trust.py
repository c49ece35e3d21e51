"""`grid --resume` unpickles Ray Tune's state from the storage folder, so it trusts only a
folder no other user could have written: one writable by group or others, owned by someone
else, or holding a symlink is refused (exit 2, naming the path) before anything is unpickled,
Ray started or MLflow touched."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import pytest

from f3ocus_ray.cli import main
from f3ocus_ray.errors import UserError
from f3ocus_ray.platform.storage_trust import check_private_storage

NOBODY = 65534  # nobody / nogroup on Debian


class _Boom:
    """Unpickling this creates the marker file: the code execution a hostile tuner.pkl gets."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _experiment(root: Path, marker: Path) -> Path:
    exp = root / "ray_results" / "tr-20990101-000000"
    (exp / "trial_0").mkdir(parents=True)
    for d in (root / "ray_results", exp, exp / "trial_0"):
        d.chmod(0o755)
    (exp / "tuner.pkl").write_bytes(pickle.dumps(_Boom(marker)))
    (exp / "tuner.pkl").chmod(0o644)
    (exp / "trial_0" / "params.json").write_text("{}")
    (exp / "trial_0" / "params.json").chmod(0o644)
    return exp


def test_a_private_folder_passes(tmp_path):
    exp = _experiment(tmp_path, tmp_path / "marker")
    check_private_storage(exp)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared").chmod(0o1777)  # an ancestor like /tmp: others cannot replace ours
    exp2 = _experiment(tmp_path / "shared", tmp_path / "marker")
    check_private_storage(exp2)


@pytest.mark.parametrize(
    "harm, expected",
    [
        ("world-writable experiment", "writable by group or others (mode drwxrwxrwx)"),
        ("sticky world-writable experiment", "writable by group or others"),
        ("group-writable tuner.pkl", "tuner.pkl: writable by group or others"),
        ("world-writable ancestor", "writable by group or others (mode drwxrwxrwx)"),
        ("tuner.pkl owned by another user", f"tuner.pkl: owned by another user (uid {NOBODY})"),
        ("symlink inside", "a symlink inside the experiment folder"),
    ],
)
def test_storage_others_could_write_is_refused(tmp_path, harm, expected):
    exp = _experiment(tmp_path / "a", tmp_path / "marker")
    if harm == "world-writable experiment":
        exp.chmod(0o777)
    elif harm == "sticky world-writable experiment":
        exp.chmod(0o1777)  # sticky helps an ancestor, not the folder Tune reads
    elif harm == "group-writable tuner.pkl":
        os.chown(exp / "tuner.pkl", -1, NOBODY)  # a group that is not the user's own
        (exp / "tuner.pkl").chmod(0o664)
    elif harm == "world-writable ancestor":
        (tmp_path / "a").chmod(0o777)
    elif harm == "tuner.pkl owned by another user":
        if os.getuid() != 0:
            pytest.skip("only root can give a file away")
        os.chown(exp / "tuner.pkl", NOBODY, NOBODY)
    else:
        (exp / "trial_0" / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UserError, match="refusing to resume from .*" + re.escape(expected)):
        check_private_storage(exp)


def test_grid_resume_refuses_a_writable_storage_before_unpickling(
    tmp_path, capsys, monkeypatch, small_vqa
):
    import ray
    from gridutil import tiny_grid

    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "unpickled"
    exp = _experiment(tmp_path, marker)
    exp.chmod(0o777)
    path = tiny_grid(tmp_path, small_vqa, "seed: [0, 1]", name="tr")
    started = ray.is_initialized()
    assert main(["grid", str(path), "--resume", "--run", exp.name]) == 2
    err = capsys.readouterr().err
    assert f"tune.storage_path: refusing to resume from {exp}: writable by group or others" in err
    assert err.count("\n") == 1
    assert not marker.exists() and not (tmp_path / "mlflow.db").exists()
    assert ray.is_initialized() == started
