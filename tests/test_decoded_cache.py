"""The decoded cache and the streaming data path: same batches bit for bit as the in-memory
path, keyed by content, written atomically, bounded in memory."""

from __future__ import annotations

import errno
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import TINY_SPEC

from f3ocus_ray.data import DataError, load_dataset, synthesize, train_tokenizer
from f3ocus_ray.data import decoded_cache as dc
from f3ocus_ray.data.client_tensors import load_client_tensors
from f3ocus_ray.data.decoded_cache import DecodedCache
from f3ocus_ray.data.split_lru import SplitLRU
from f3ocus_ray.data.tokenizer import tokenizer_to_json
from f3ocus_ray.fl.training import evaluate, local_train
from f3ocus_ray.models import build_model
from f3ocus_ray.task import MappedRows


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return synthesize(
        tmp_path_factory.mktemp("dc") / "medvqa", scale=0.0, min_per_client=12, image_size=24
    )


def _cache(path: Path, image_size: int = 32, root: Path | None = None):
    ds = load_dataset(path, image_size=image_size)
    tok = train_tokenizer(ds.questions("train"), vocab_size=120)
    return ds, tok, DecodedCache(ds, tok, tokenizer_to_json(tok), 8, root=root)


@pytest.fixture
def one_thread():
    """Exact float comparisons own their thread count (sums re-associate across threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train_eval(data, steps=3):
    ds_outputs = 200
    model, space = build_model(replace(TINY_SPEC, num_outputs=ds_outputs, vocab_size=120))
    params = space.apply(model, np.array([False, True, False, True]))
    stats = local_train(
        model, params, data, steps=steps, batch_size=4, lr=1e-3, weight_decay=0.0, seed=3
    )
    state = {n: p.detach().clone() for n, p in model.named_parameters()}
    return stats, state, evaluate(model, data, 5, seed=4)


def test_streaming_and_in_memory_paths_train_and_evaluate_bitwise_alike(
    data_dir, tmp_path, one_thread
):
    ds, tok, cache = _cache(data_dir, root=tmp_path)
    in_memory = load_client_tensors(ds, tok, "oct", "train", 8)
    streamed = cache.open("oct", "train")
    assert streamed.streamed and not in_memory.streamed
    assert len(streamed) == len(in_memory) and streamed.nbytes == in_memory.nbytes
    idx = torch.tensor([5, 0, 3])
    assert torch.equal(streamed.pixel_values[idx], in_memory.pixel_values[idx])
    a_stats, a_state, a_eval = _train_eval(in_memory)
    b_stats, b_state, b_eval = _train_eval(streamed)
    assert a_stats == b_stats and a_eval == b_eval
    assert all(torch.equal(a_state[n], b_state[n]) for n in a_state)


def test_a_cache_is_keyed_by_content_and_rebuilt_when_it_changes(data_dir, tmp_path):
    _, _, cache = _cache(data_dir, root=tmp_path)
    first = cache.folder("oct", "test")
    cache.open("oct", "test")
    assert (first / "meta.json").is_file()
    again = _cache(data_dir, root=tmp_path)[2]
    assert again.folder("oct", "test") == first  # the same content: reused
    # another image size: another folder, built from scratch
    other = _cache(data_dir, image_size=16, root=tmp_path)[2]
    assert other.folder("oct", "test") != first
    assert other.open("oct", "test").pixel_values.shape[1:] == (16, 16, 3)
    # a changed annotations.jsonl (one answer edited) on a copy of the data set
    import shutil

    copy = shutil.copytree(data_dir, tmp_path / "copy")
    ann = copy / "annotations.jsonl"
    lines = ann.read_text().splitlines()
    lines[0] = lines[0].replace('"client"', '"note": 1, "client"')
    ann.write_text("\n".join(lines) + "\n")
    edited = _cache(copy, root=tmp_path)[2]
    assert edited.folder("oct", "test") != first


def test_a_full_disk_leaves_no_partial_cache_and_names_folder_and_space(
    data_dir, tmp_path, monkeypatch
):
    _, _, cache = _cache(data_dir, root=tmp_path / "cache")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(dc.np, "save", full)
    with pytest.raises(DataError, match=r"cache.*no space left.*needs [0-9.]+ MiB"):
        cache.open("oct", "train")
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []
    monkeypatch.undo()
    assert len(cache.open("oct", "train")) == 10  # a later try builds it


def test_concurrent_workers_build_a_split_once(data_dir, tmp_path, monkeypatch):
    _, _, cache = _cache(data_dir, root=tmp_path)
    builds = []
    build = DecodedCache._build

    def counted(self, *args):
        builds.append(args)
        return build(self, *args)

    monkeypatch.setattr(DecodedCache, "_build", counted)
    out = []
    threads = [threading.Thread(target=lambda: out.append(cache.open("fundus", "train")))]
    threads.append(threading.Thread(target=lambda: out.append(cache.open("fundus", "train"))))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len(out) == 2


def test_the_in_memory_splits_are_bounded_least_recently_used_first(data_dir, tmp_path):
    _, _, cache = _cache(data_dir, root=tmp_path)
    one = cache.open("oct", "train").nbytes  # every client has 10 train samples
    lru = SplitLRU(lambda key: cache.open(*key), 2 * one, torch.device("cpu"))
    for client in ("oct", "fundus", "oct", "ultrasound"):
        assert not lru.get((client, "train")).streamed
    assert list(lru.held) == [("oct", "train"), ("ultrasound", "train")]  # fundus evicted
    assert (lru.hits, lru.misses, lru.evictions) == (1, 3, 1)
    assert lru.held_bytes <= 2 * one
    # a split larger than the budget streams
    small = SplitLRU(lambda key: cache.open(*key), one - 1, torch.device("cpu"))
    got = small.get(("oct", "train"))
    assert got.streamed and not small.held
    assert isinstance(got.pixel_values, MappedRows)


def test_a_federation_streaming_every_batch_ends_as_one_holding_every_split(data_dir, tmp_path):
    """Through the worker: training, evaluation and LNTK scoring, 2 rounds, bit for bit."""
    from f3ocus_ray.config import load_config
    from f3ocus_ray.fl.executors import InProcessExecutor
    from f3ocus_ray.fl.round import Federation
    from f3ocus_ray.platform.prepare import prepare

    def rounds(cache_mb):
        cfg = load_config(
            None,
            [
                f"data.path={data_dir}",
                "data.clients=[oct, fundus]",
                "data.image_size=24",
                "model.num_layers=2",
                "federation.budgets=1",
                "federation.strategy=lntk",
                "scoring.n_samples=4",
                "training.local_steps=3",
                "training.batch_size=4",
                "engine.num_workers=1",
                f"engine.data_cache_dir={tmp_path / 'cache'}",
                f"engine.worker_cache_mb={cache_mb}",
            ],
        )
        spec = prepare(cfg).driver_spec
        executor = InProcessExecutor(replace(spec.worker, torch_threads=1))
        try:
            federation = Federation(spec, executor)
            out = [federation.run_round() for _ in range(2)]
            streamed = [t.streamed for t in executor.worker._splits._views.values()]
            stats = executor.worker.cache_stats()
            return out, federation.state, streamed, (stats["hits"], stats["misses"])
        finally:
            executor.close()

    mem, mem_state, _, held = rounds(64)
    stream, stream_state, streamed, none_held = rounds(0)
    # 2 clients, 2 rounds of train, score and test: 4 splits loaded once, then held
    assert held == (8, 4) and none_held == (0, 12) and all(streamed)
    for a, b in zip(mem, stream, strict=True):
        assert a.score == b.score and a.train_loss == b.train_loss and a.loss == b.loss
        assert np.array_equal(a.raw_scores, b.raw_scores) and np.array_equal(a.masks, b.masks)
    assert all(np.array_equal(mem_state[n], stream_state[n]) for n in mem_state)


def test_an_unwritable_cache_folder_is_refused_before_any_worker(tmp_path):
    from f3ocus_ray.errors import ConfigError
    from f3ocus_ray.platform.data_prep import decoded_cache_dir

    assert decoded_cache_dir(None, tmp_path) == str(tmp_path / ".f3ocus-cache")
    assert decoded_cache_dir(str(tmp_path / "a" / "b"), tmp_path) == str(tmp_path / "a" / "b")
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"^engine.data_cache_dir: .*file/c cannot be written"):
        decoded_cache_dir(str(tmp_path / "file" / "c"), tmp_path)
