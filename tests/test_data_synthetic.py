"""Synthetic MedVQA-FL: sizes, split, question mix, determinism, image-dependent answers."""

from collections import Counter, defaultdict

import numpy as np
import pytest

from f3ocus_ray.data import (
    MEDVQA_FL_CLIENTS,
    TYPE_PROPORTIONS,
    DataError,
    answer_vocabulary,
    client_sizes,
    generate_vqa,
    load_dataset,
    synthesize,
    vqa_baselines,
)
from f3ocus_ray.data.synthetic.plan import question_type_schedule

TINY = {"scale": 0.0, "min_per_client": 6, "image_size": 16}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = synthesize(
        tmp_path_factory.mktemp("s") / "ds", seed=0, scale=0.0005, min_per_client=20, image_size=32
    )
    return load_dataset(path, 32)


def test_client_sizes_are_proportional_to_the_paper_with_a_floor():
    sizes = client_sizes(0.002, 40)
    assert sizes == {
        "chest_xray": 236,
        "oct": 219,
        "colon_pathology": 214,
        "dermatoscope": 40,
        "fundus": 40,
        "ultrasound": 40,
        "blood_microscope": 40,
        "kidney_cortex": 473,
        "abdominal_ct": 215,
    }
    assert sum(sizes.values()) == 1517
    unfloored = client_sizes(0.01, 0)
    for c in MEDVQA_FL_CLIENTS:
        assert abs(unfloored[c.name] - 0.01 * c.paper_count) <= 0.5
    assert sum(c.paper_count for c in MEDVQA_FL_CLIENTS) == 707_962


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scale": -1.0},
        {"scale": float("nan")},
        {"min_per_client": -1},
        {"scale": 0.0, "min_per_client": 0},
    ],
)
def test_bad_sizes_are_refused(kwargs):
    with pytest.raises(DataError):
        client_sizes(**{"scale": 0.002, "min_per_client": 40, **kwargs})


def test_written_set_has_the_clients_sizes_and_an_80_20_split(small):
    assert small.task == "vqa"
    assert small.clients == [c.name for c in MEDVQA_FL_CLIENTS]
    expected = client_sizes(0.0005, 20)
    for client, s in small.sizes().items():
        n = s["train"] + s["test"]
        assert n == expected[client]
        assert s["test"] == round(0.2 * n)


def test_question_types_follow_the_paper_mix(small):
    counts = Counter(question_type_schedule(1000, np.random.default_rng(0)))
    assert counts == {
        "modality": 100,
        "anatomy": 200,
        "diagnosis": 390,
        "grading": 10,
        "tissue": 200,
        "other": 100,
    }
    types = Counter(r.question_type for r in small.records)
    n = len(small.records)
    for t, p in TYPE_PROPORTIONS.items():
        assert abs(types[t] / n - p) < 0.03, (t, types[t] / n)


def test_answers_come_from_a_small_closed_vocabulary(small):
    vocab = answer_vocabulary()
    assert 30 <= len(vocab) <= 70
    assert set(small.answers) <= set(vocab)
    per_client_type = defaultdict(set)
    for r in small.records:
        per_client_type[(r.client, r.question_type)].add(r.answer)
    assert max(len(v) for v in per_client_type.values()) <= 4


def test_same_seed_same_bytes_and_pixels_other_seed_differs(tmp_path):
    a = synthesize(tmp_path / "a", seed=5, **TINY)
    b = synthesize(tmp_path / "b", seed=5, **TINY)
    c = synthesize(tmp_path / "c", seed=6, **TINY)
    ann = [(p / "annotations.jsonl").read_bytes() for p in (a, b, c)]
    assert ann[0] == ann[1]
    assert ann[0] != ann[2]
    da, db, dc = (load_dataset(p, 16) for p in (a, b, c))
    differs = False
    for client in da.clients:
        for split in ("train", "test"):
            x = da.client_split(client, split).images
            np.testing.assert_array_equal(x, db.client_split(client, split).images)
            y = dc.client_split(client, split).images
            differs |= x.shape != y.shape or not np.array_equal(x, y)
    assert differs


def test_modalities_look_different(small):
    """Gray modalities are gray, stained ones colourful, and mean intensities differ."""
    gray = {"chest_xray", "oct", "ultrasound", "kidney_cortex", "abdominal_ct"}
    means = {}
    for client in small.clients:
        x = small.client_split(client, "train").images.astype(np.float32)
        chroma = np.abs(x - x.mean(axis=-1, keepdims=True)).mean()
        assert (chroma < 2.0) if client in gray else (chroma > 8.0), (client, chroma)
        means[client] = x.mean()
    assert max(means.values()) - min(means.values()) > 60


def _features(images: np.ndarray) -> np.ndarray:
    """8x8 average colours plus 8x8 gradient energy: enough for a linear probe."""
    x = images.astype(np.float32) / 255.0
    n, s = x.shape[:2]
    k = s // 8
    pool = x.reshape(n, 8, k, 8, k, 3).mean((2, 4)).reshape(n, -1)
    g = x.mean(-1)
    grad = np.zeros_like(g)
    grad[:, :-1] += np.abs(np.diff(g, axis=1))
    grad[:, :, :-1] += np.abs(np.diff(g, axis=2))
    return np.concatenate([pool, grad.reshape(n, 8, k, 8, k).mean((2, 4)).reshape(n, -1)], axis=1)


def test_answers_depend_on_the_image():
    """A ridge probe on pixels, per question, clearly beats the question-only guess."""
    samples = list(generate_vqa(seed=1, scale=0.0, min_per_client=150, image_size=32))
    feats = _features(np.stack([s.image for s in samples]))
    by_question = defaultdict(list)
    for i, s in enumerate(samples):
        by_question[s.question].append(i)
    hits_probe = hits_blind = n_test = 0
    for idx in by_question.values():
        tr = [i for i in idx if samples[i].split == "train"]
        te = [i for i in idx if samples[i].split == "test"]
        if not tr or not te:
            continue
        classes = sorted({samples[i].answer for i in tr})
        y_tr = np.array([classes.index(samples[i].answer) for i in tr])
        truth = [samples[i].answer for i in te]
        majority = classes[np.bincount(y_tr).argmax()]
        mu, sd = feats[tr].mean(0), feats[tr].std(0) + 1e-3
        a_tr = np.c_[(feats[tr] - mu) / sd, np.ones(len(tr))]
        a_te = np.c_[(feats[te] - mu) / sd, np.ones(len(te))]
        w = np.linalg.solve(
            a_tr.T @ a_tr + 10 * np.eye(a_tr.shape[1]), a_tr.T @ np.eye(len(classes))[y_tr]
        )
        pred = [classes[j] for j in (a_te @ w).argmax(1)]
        hits_probe += sum(p == t for p, t in zip(pred, truth, strict=True))
        hits_blind += sum(t == majority for t in truth)
        n_test += len(te)
    probe, blind = hits_probe / n_test, hits_blind / n_test
    assert n_test > 250
    assert blind < 0.5
    assert probe > blind + 0.25, (probe, blind)


def test_blind_baselines_of_the_synthetic_set_are_low(small):
    b = vqa_baselines(small)
    assert b.majority < 0.2
    assert b.question_only < 0.55
    assert b.question_only_per_client >= b.question_only  # knowing the client helps a guesser
    assert b.per_type["diagnosis"] < 0.5


def test_subset_of_clients_gives_the_same_samples():
    full = [s for s in generate_vqa(seed=2, **TINY) if s.client == "fundus"]
    sub = list(generate_vqa(seed=2, clients=["fundus"], **TINY))
    assert [(s.question, s.answer, s.split) for s in sub] == [
        (s.question, s.answer, s.split) for s in full
    ]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(sub, full, strict=True))
    with pytest.raises(DataError, match="unknown client 'mri'"):
        list(generate_vqa(clients=["mri"], **TINY))


def test_synthesize_refuses_a_non_empty_folder_unless_told(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(DataError, match="not empty"):
        synthesize(out, **TINY)
    with pytest.raises(DataError, match="not a data set"):  # a folder we did not write stays
        synthesize(out, overwrite=True, **TINY)
    assert (out / "keep.txt").read_text() == "x"
    (out / "keep.txt").unlink()
    synthesize(out, **TINY)
    synthesize(out, overwrite=True, **TINY)  # a data set is replaced
    assert load_dataset(out, 16).task == "vqa"
    with pytest.raises(DataError, match="unknown task"):
        synthesize(tmp_path / "x", task="segmentation")


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_cli_synth_takes_the_config_defaults_and_tasks_and_writes_what_synthesize_writes(
    tmp_path, capsys
):
    import typing

    from f3ocus_ray.cli import _parser, main
    from f3ocus_ray.config import DataConfig, SyntheticDataConfig

    args = _parser().parse_args(["data", "synth", "--out", str(tmp_path / "x")])
    defaults = SyntheticDataConfig()
    assert {k: getattr(args, k) for k in SyntheticDataConfig.model_fields} == dict(defaults)
    assert args.image_size == DataConfig().image_size
    tasks = typing.get_args(SyntheticDataConfig.model_fields["task"].annotation)
    for task in tasks:  # every task the config accepts, mixed included
        assert _parser().parse_args(["data", "synth", "--out", "x", "--task", task]).task == task

    small = {"scale": 0.0002, "min_per_client": 5, "n_clients": 2, "samples_per_client": 5}
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in small.items()]
    cli_out = tmp_path / "cli"
    assert (
        main(
            [
                "data",
                "synth",
                "--out",
                str(cli_out),
                "--task",
                "mixed",
                "--image-size",
                "16",
                "--seed",
                "3",
                *flags,
            ]
        )
        == 0
    )
    direct = synthesize(
        tmp_path / "direct", task="mixed", seed=3, image_size=16, alpha=0.5, **small
    )
    assert _files(cli_out) == _files(direct)
    assert "synthesize" in capsys.readouterr().err  # the progress bar

    # a value the config refuses is a one-line error, and nothing is written
    assert main(["data", "synth", "--out", str(tmp_path / "bad"), "--min-per-client", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --min-per-client: ") and err.count("\n") == 1
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("task", ["vqa", "mixed"])
def test_one_or_two_processes_write_the_same_files(tmp_path, monkeypatch, task):
    import f3ocus_ray.data.synthetic as synthetic

    monkeypatch.setattr(synthetic, "_chunk_size", lambda image_size: 4)  # many jobs
    kw = {**TINY, "task": task, "n_clients": 2, "samples_per_client": 5}
    one = synthesize(tmp_path / "one", **kw, workers=1)
    two = synthesize(tmp_path / "two", **kw, workers=2, progress=True)
    assert _files(one) == _files(two) and len(_files(one)) > 20


def test_scale_one_gives_medvqa_fl_published_sizes():
    sizes = client_sizes(1.0, 0)
    assert sizes == {c.name: c.paper_count for c in MEDVQA_FL_CLIENTS}
    assert sum(sizes.values()) == 707_962  # the paper's total


def test_the_synthetic_cache_key_ignores_the_number_of_processes():
    from f3ocus_ray.config import DataConfig
    from f3ocus_ray.platform.data_prep import synthetic_path

    a = DataConfig(synthetic={"workers": 1})
    assert synthetic_path(a) == synthetic_path(DataConfig(synthetic={"workers": 4}))
    assert synthetic_path(a) != synthetic_path(DataConfig(synthetic={"scale": 0.004}))


def test_runs_starting_at_once_generate_the_synthetic_set_once(tmp_path, monkeypatch):
    import threading

    from f3ocus_ray.config import DataConfig
    from f3ocus_ray.platform import data_prep

    cfg = DataConfig(cache_dir=str(tmp_path), synthetic={"scale": 1e-6, "min_per_client": 5})
    made = []
    write = data_prep.synthesize_from_config

    def counted(*args, **kwargs):
        made.append(args)
        return write(*args, progress=False)

    monkeypatch.setattr(data_prep, "synthesize_from_config", counted)
    paths = []
    threads = [threading.Thread(target=lambda: paths.append(data_prep.ensure_synthetic(cfg)))]
    threads.append(threading.Thread(target=lambda: paths.append(data_prep.ensure_synthetic(cfg))))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and len(paths) == 2 and paths[0] == paths[1]
    assert (paths[0] / "annotations.jsonl").is_file()
