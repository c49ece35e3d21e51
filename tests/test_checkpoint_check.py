"""A real checkpoint folder is checked before a run: its tokenizer and image processor are there,
its config is the family's, its weights' shapes are the config's; else exit 2 naming the file,
before any data, Ray or MLflow work. Folders are tiny, written by save_pretrained (no download)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from tiny import TINY_SPEC

from f3ocus_ray.errors import ConfigError
from f3ocus_ray.models import build_model
from f3ocus_ray.models.checkpoint_check import check_checkpoint

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "what", "is", "the", "organ", "lung"]


def _tokenizer(folder, words=WORDS):
    from transformers import BertTokenizerFast

    vocab = folder.parent / f"{folder.name}-vocab.txt"
    vocab.write_text("\n".join(words))
    BertTokenizerFast(str(vocab)).save_pretrained(folder)


def _processor(folder):
    from transformers import ViltImageProcessor

    ViltImageProcessor(size={"shortest_edge": 32}).save_pretrained(folder)


def write_folder(tmp_path, tiny: str = "tiny-vilt", tokenizer=True, processor=True):
    model, _ = build_model(replace(TINY_SPEC, name=tiny))
    folder = tmp_path / tiny.removeprefix("tiny-")
    model.net.save_pretrained(folder)
    if tokenizer:
        _tokenizer(folder)
    if processor:
        _processor(folder)
    return folder


def test_good_folders_pass_vilt_and_llava_legacy_keys(tmp_path):
    check_checkpoint("vilt", str(write_folder(tmp_path)))
    llava = write_folder(tmp_path, "tiny-llava")  # saved in the legacy language_model.* keys
    check_checkpoint("llava", str(llava))
    # transformers 5 saves a processor's image processor inside processor_config.json
    (llava / "preprocessor_config.json").unlink()
    (llava / "processor_config.json").write_text(json.dumps({"image_processor": {}}))
    check_checkpoint("llava", str(llava))
    check_checkpoint("tiny-vilt", None)  # tiny families: nothing to check


def test_a_folder_without_its_tokenizer_is_refused(tmp_path):
    folder = write_folder(tmp_path, tokenizer=False)
    with pytest.raises(ConfigError, match=rf"model.path: {folder} has no tokenizer"):
        check_checkpoint("vilt", str(folder))


def test_a_folder_without_its_processor_is_refused(tmp_path):
    folder = write_folder(tmp_path, processor=False)
    with pytest.raises(ConfigError, match=rf"model.path: {folder} has no image processor"):
        check_checkpoint("vilt", str(folder))


def test_a_tokenizer_larger_than_the_embedding_is_refused(tmp_path):
    folder = write_folder(tmp_path)  # the tiny ViLT's embedding has 50 rows
    _tokenizer(folder, WORDS + [f"word{i}" for i in range(50)])
    with pytest.raises(
        ConfigError,
        match=r"tokenizer.json has 60 tokens; the checkpoint's embedding has 50 rows: not this",
    ):
        check_checkpoint("vilt", str(folder))


def test_a_config_of_another_family_is_refused(tmp_path):
    folder = write_folder(tmp_path, "tiny-llava")
    with pytest.raises(
        ConfigError, match=r"config.json is a 'llava' checkpoint \(LlavaForConditionalGeneration\)"
    ):
        check_checkpoint("blip2", str(folder))


def test_weights_whose_shapes_differ_from_the_config_are_refused(tmp_path):
    folder = write_folder(tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["intermediate_size"] *= 2  # the config says 128, the tensors hold 64
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        ConfigError,
        match=r"model.safetensors: tensor vilt.encoder.layer.0.intermediate.dense.bias has "
        r"shape \[64\]; config.json gives \[128\]",
    ):
        check_checkpoint("vilt", str(folder))


def test_an_albef_file_with_a_tensor_of_the_wrong_shape_is_refused(tmp_path):
    from test_models_families import _albef_original_keys

    model, _ = build_model(replace(TINY_SPEC, name="tiny-albef"))
    sd = _albef_original_keys(model)
    path = tmp_path / "albef" / "ALBEF_vqa.pth"
    path.parent.mkdir()
    _tokenizer(path.parent)
    _processor(path.parent)
    torch.save({"model": sd}, path)
    check_checkpoint("albef", str(path))
    sd["text_encoder.encoder.layer.1.output.dense.weight"] = torch.zeros(32, 48)
    torch.save({"model": sd}, path)
    with pytest.raises(ConfigError, match=r"ALBEF_vqa.pth: tensor blocks.1.output.dense.weight"):
        check_checkpoint("albef", str(path))
    torch.save({"model": {"weight": torch.zeros(1)}}, path)
    with pytest.raises(ConfigError, match=r"ALBEF_vqa.pth is not an ALBEF checkpoint"):
        check_checkpoint("albef", str(path))


def test_f3ocus_run_refuses_it_with_exit_2_before_data_and_ray(tmp_path, capsys):
    import ray

    from f3ocus_ray.cli import main

    folder = write_folder(tmp_path, tokenizer=False)
    cache = tmp_path / "data"
    config = tmp_path / "exp.yaml"
    config.write_text(
        f"model: {{name: vilt, path: {folder}, device: cpu}}\n"
        f"data: {{cache_dir: {cache}}}\n"
        "engine: {num_workers: 1, cpus_per_worker: 1}\n"
        "federation: {budgets: 2}\n"
        "tracking: {enabled: false}\n"
    )
    capsys.readouterr()  # save_pretrained's progress bar
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: model.path: {folder} has no tokenizer")
    assert not cache.exists() and not ray.is_initialized()


def test_a_grid_is_refused_at_its_first_bad_checkpoint_before_any_data(tmp_path):
    from f3ocus_ray.platform.grid_spec import check_runnable, load_grid

    good = write_folder(tmp_path / "a")
    bad = write_folder(tmp_path / "b", processor=False)
    (tmp_path / "grid.yaml").write_text(
        "name: g\n"
        "base: {model: {name: vilt, device: cpu}, federation: {budgets: 2}, "
        f"data: {{cache_dir: {tmp_path / 'data'}}}}}\n"
        f"axes: {{model.path: [{good}, {bad}]}}\n"
    )
    grid = load_grid(tmp_path / "grid.yaml", cwd=tmp_path)
    with pytest.raises(
        ConfigError, match=rf"trial 1 \(model.path={bad}\): model.path: {bad} has no image"
    ):
        check_runnable(grid)
    assert not (tmp_path / "data").exists()
