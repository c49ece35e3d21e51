"""`f3ocus pretrain`: a shortened recipe end to end through the command (deterministic), the
committed pretrained tiny ViLT (hash verifies, loads as `model.path`, its tokenizer covers the
medical questions), and the refusal of a folder whose files are not those its recipe hashed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from f3ocus_ray.cli import main
from f3ocus_ray.data.pretrain_corpus import answer_vocabulary, generate_corpus
from f3ocus_ray.models.recipe import RECIPE_FILE, RecipeError, verify_checkpoint

COMMITTED = Path(__file__).resolve().parents[1] / "checkpoints" / "vilt-tiny-pretrained"

SHORT = [
    "model.hidden_size=32",
    "model.num_layers=2",
    "model.intermediate_size=64",
    "model.max_text_len=32",
    "corpus.images=24",
    "corpus.held_out=4",
    "corpus.image_size=32",
    "tokenizer.vocab_size=2000",
    "training.steps=4",
    "training.batch_size=4",
    "training.warmup_steps=1",
    "training.log_every=2",
]


def _pretrain(tmp_path: Path, out: Path, *extra: str) -> int:
    args = ["pretrain", "experiments/pretrain/vilt_tiny.yaml", "--out", str(out)]
    sets = [*SHORT, f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", *extra]
    return main([*args, *(f"--set={s}" for s in sets)])


def test_a_shortened_recipe_runs_end_to_end_and_is_deterministic(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _pretrain(tmp_path, a) == 0
    assert _pretrain(tmp_path, b) == 0
    assert "content hash" in capsys.readouterr().out
    names = {"config.json", "model.safetensors", "tokenizer.json", RECIPE_FILE}
    assert names <= {p.name for p in a.iterdir()}
    ra, rb = verify_checkpoint(a), verify_checkpoint(b)
    assert ra["content_hash"] == rb["content_hash"]  # seeded, fixed threads: same weights
    assert ra["loads_as"] == "vilt" and ra["config"]["training"]["steps"] == 4
    assert not list(tmp_path.glob(".*tmp-*"))  # no half-written folder left beside
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("f3ocus-pretrain")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    assert "train_vqa" in runs[0].data.metrics and "train_mlm" in runs[0].data.metrics


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["family=tiny-llava"], "family: 'tiny-llava' cannot be pretrained yet"),
        (["training.objectives=[mlm]"], "training.objectives: must include vqa"),
        (["training.objectives=[vqa, caption]"], "training.objectives: ['caption'] not among"),
        (["model.patch_size=7"], "model.patch_size: must divide corpus.image_size"),
        (["tokenizer.vocab_size=1000"], "tokenizer.vocab_size: 1000 is too small"),
    ],
)
def test_bad_pretrain_config_exits_2_before_any_work(tmp_path, capsys, extra, expected):
    out = tmp_path / "ck"
    assert _pretrain(tmp_path, out, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "mlflow.db").exists()


def test_an_existing_checkpoint_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "ck"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"mine")
    assert _pretrain(tmp_path, out) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == b"mine"
    assert not (tmp_path / "mlflow.db").exists()


def test_the_corpus_is_deterministic_and_its_words_are_not_the_medical_ones():
    a, b = generate_corpus(12, 32, seed=3), generate_corpus(12, 32, seed=3)
    assert (a.images == b.images).all() and a.captions == b.captions and a.qa == b.qa
    assert not (generate_corpus(12, 32, seed=4).images == a.images).all()
    assert {ans for pairs in a.qa for _, ans in pairs} <= set(answer_vocabulary())
    from f3ocus_ray.data.synthetic.questions import answer_vocabulary as medical_answers

    assert not set(answer_vocabulary()) & set(medical_answers()) - {"left", "right", "yes", "no"}


def test_the_committed_checkpoint_verifies_and_loads_as_model_path():
    recipe = verify_checkpoint(COMMITTED)
    assert recipe is not None and recipe["loads_as"] == "vilt"
    assert sum(p.stat().st_size for p in COMMITTED.iterdir()) <= 5 * 2**20
    from f3ocus_ray.config import load_config
    from f3ocus_ray.models.families import build_model, checkpoint_tokenizer
    from f3ocus_ray.models.spec import ModelSpec

    cfg = load_config(None, ["model.name=vilt", f"model.path={COMMITTED}"])
    own = checkpoint_tokenizer("vilt", str(COMMITTED))  # fine-tuning encodes with the folder's
    assert own == (COMMITTED / "tokenizer.json").read_text()
    spec = ModelSpec.from_config(
        cfg.model, image_size=64, vocab_size=1, max_text_len=24, num_outputs=5
    )
    model, space = build_model(spec)
    assert len(space.units) == recipe["config"]["model"]["num_layers"] == cfg.model.num_layers
    assert model.net.classifier[-1].out_features == 5  # a new head for the task's answers


def test_the_committed_tokenizer_splits_medical_words_into_sub_words_not_unknowns():
    from f3ocus_ray.data.synthetic.questions import MODALITY_SPECS
    from f3ocus_ray.data.tokenizer import load_tokenizer

    tok = load_tokenizer(COMMITTED).backend
    questions = {t for s in MODALITY_SPECS.values() for a in s.asks.values() for t in a.templates}
    words = {w for q in questions for w in q.rstrip("?").split()}
    pieces = [tok.encode(w, add_special_tokens=False).tokens for w in sorted(words)]
    assert sum("[UNK]" in p for p in pieces) == 0
    assert sum(len(p) for p in pieces) / len(pieces) < 3.0  # sub-words, not letters
    assert max(len(tok.encode(q).ids) for q in questions) <= 24


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "ck"
    shutil.copytree(COMMITTED, folder)
    return folder


@pytest.mark.parametrize("victim", ["model.safetensors", "tokenizer.json", "config.json"])
def test_a_folder_whose_files_differ_from_its_recipe_is_refused_naming_the_file(
    tmp_path, capsys, victim
):
    folder = _copy(tmp_path)
    path = folder / victim
    if victim == "tokenizer.json":  # another checkpoint's tokenizer
        data = json.loads(path.read_text())
        data["model"]["vocab"]["zzzz"] = len(data["model"]["vocab"])
        path.write_text(json.dumps(data))
    else:
        raw = bytearray(path.read_bytes())
        raw[-2] ^= 1
        path.write_bytes(bytes(raw))
    with pytest.raises(RecipeError, match=victim):
        verify_checkpoint(folder)
    db = tmp_path / "mlflow.db"
    args = ["run", "experiments/demo.yaml", f"--set=tracking.uri=sqlite:///{db}"]
    args += [f"--set=output_dir={tmp_path / 'runs'}", f"--set=data.cache_dir={tmp_path / 'd'}"]
    args += ["--set=model.name=vilt", f"--set=model.path={folder}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(path) in err and err.count("\n") == 1
    assert not db.exists() and not (tmp_path / "runs").exists() and not (tmp_path / "d").exists()


def test_a_grid_trial_loads_the_checkpoint_by_an_absolute_path(tmp_path):
    """Tune trials run in their own folder: a relative model.path is resolved at expansion,
    so a grid axis can switch between pretrained and random weights."""
    from f3ocus_ray.platform.grid_spec import load_grid

    grid = tmp_path / "g.yaml"
    grid.write_text(
        "name: g\nbase: {}\naxes:\n  backbone:\n"
        "    pretrained: {model.name: vilt, model.path: checkpoints/vilt-tiny-pretrained}\n"
        "    random: {model.name: tiny-vilt, model.path: null}\n"
    )
    trials = load_grid(grid, cwd=COMMITTED.parents[1]).trials
    assert [t.cfg.model.path for t in trials] == [str(COMMITTED), None]
