"""The model families (BLIP, ALBEF, BLIP-2, LLaVA; ViLT's real-checkpoint path): tiny configs
offline, masks train exactly the selected blocks, LNTK scores, a 2-round federation, real
checkpoints loaded from local folders, and generative exact match against `generate()`."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
import torch
from tiny import TINY_SPEC

from f3ocus_ray.config import parse_config
from f3ocus_ray.data.generative import encode_prompt_answer
from f3ocus_ray.errors import ConfigError
from f3ocus_ray.fl.training import local_train
from f3ocus_ray.models import ModelSpec, build_model
from f3ocus_ray.models.families import is_generative
from f3ocus_ray.scoring import score_units
from f3ocus_ray.task import ClientTensors, generative_exact_match, task_loss

FAMILIES = ["tiny-blip", "tiny-albef", "tiny-blip2", "tiny-llava"]
V, Q, A = 60, 8, 3  # vocabulary, prompt length, answer tokens

SPEC = replace(TINY_SPEC, name="tiny-blip", vocab_size=V, max_text_len=Q, max_answer_length=A)


def spec(name: str, **kw) -> ModelSpec:
    return replace(SPEC, name=name, **kw)


def random_client(name: str, n: int, seed: int = 0) -> ClientTensors:
    """n random samples: answer ids (classification) or prompt + answer + EOS (generative)."""
    g = torch.Generator().manual_seed(seed)
    pixels = torch.rand(n, 3, 32, 32, generator=g) * 2 - 1
    if not is_generative(name):
        ids = torch.randint(5, V, (n, Q), generator=g)
        mask = torch.ones(n, Q, dtype=torch.long)
        mask[::2, 6:] = 0
        return ClientTensors(pixels, ids, mask, torch.randint(0, 5, (n,), generator=g), "vqa")
    width = Q + A + 1
    ids = torch.randint(5, V, (n, width), generator=g)
    ids[:, Q - 1] = 3  # the prompt's [SEP]
    ids[:, -1] = 3  # EOS
    targets = torch.full((n, width), -100)
    targets[:, Q - 1 : width - 1] = ids[:, Q:]
    return ClientTensors(pixels, ids, torch.ones_like(ids), targets, "generative")


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", FAMILIES)
def test_builds_offline_identically_and_backpropagates(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    model, space = build_model(spec(name))
    again, _ = build_model(spec(name))
    a, b = _state(model), _state(again)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # every worker
    assert space.num_units == 4
    data = random_client(name, 4)
    logits = data.forward(model, slice(None))
    expected = (4, Q + A + 1, V + 1) if is_generative(name) else (4, 5)
    assert tuple(logits.shape) == expected
    space.apply(model, np.ones(4, dtype=bool))
    task_loss(logits, data.targets, data.task).backward()
    params = dict(model.named_parameters())
    for unit in space.units:
        assert any(
            params[n].grad is not None and params[n].grad.abs().sum() > 0 for n in unit.params
        )
    # the vision tower is always frozen by default: neither a unit nor the head
    vision = re.compile(r"^(vision\.|net\.vision_model\.|net\.model\.vision_tower\.)")
    assert not any(vision.match(n) for n in space.all_params)
    with_vision = build_model(spec(name, freeze_vision=False))[1]
    assert any(vision.match(n) for n in with_vision.head)


@pytest.mark.parametrize("units", ["layers", "adapters", "lora", "layernorm", "bias"])
@pytest.mark.parametrize("name", FAMILIES)
def test_mask_trains_exactly_the_selected_units(name, units):
    if name == "tiny-llava" and units == "bias":
        with pytest.raises(ValueError, match="no bias"):
            build_model(spec(name, unit_mode=units))
        return
    model, space = build_model(spec(name, unit_mode=units, adapter_reduction=4, lora_rank=2))
    kind = {"adapters": ".adapter.", "lora": "lora_", "layernorm": "norm", "bias": ".bias"}
    for unit in space.units:
        assert all(kind.get(units, "") in n.lower() for n in unit.params)
    mask = np.array([True, False, True, False])
    trained = set(space.trainable(mask))
    before = _state(model)
    params = space.apply(model, mask)
    local_train(
        model,
        params,
        random_client(name, 8),
        steps=2,
        batch_size=4,
        lr=1e-2,
        weight_decay=0.0,
        seed=0,
    )
    after = _state(model)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed <= trained  # nothing outside the mask moved, bit for bit
    for i in (0, 2):  # every selected unit moved (LoRA's A stays while B leaves zero)
        assert changed & set(space.units[i].params)


@pytest.mark.parametrize("name", FAMILIES)
def test_lntk_scores_every_unit(name):
    model, space = build_model(spec(name))
    data = random_client(name, 6)
    fast = score_units(model, space, data, n_samples=6, chunk_size=3)
    assert fast.raw.shape == (4,) and np.isfinite(fast.raw).all() and (fast.raw > 0).all()
    if name in ("tiny-albef", "tiny-llava"):  # the frozen-prefix split + vmap = the reference
        few = score_units(model, space, data, n_samples=3)
        exact = score_units(model, space, data, n_samples=3, exact=True)
        np.testing.assert_allclose(few.raw, exact.raw, rtol=1e-4)


def test_generative_loss_is_each_samples_mean_over_answer_tokens():
    logits = torch.randn(2, 5, 7)
    targets = torch.tensor([[-100, 1, 2, -100, -100], [-100, -100, -100, 4, -100]])
    tok = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), targets.clamp(min=0).flatten(), reduction="none"
    ).view(2, 5)
    expected = ((tok[0, 1] + tok[0, 2]) / 2 + tok[1, 3]) / 2
    torch.testing.assert_close(task_loss(logits, targets, "generative"), expected)
    torch.testing.assert_close(task_loss(logits[1:], targets[1:], "generative"), tok[1, 3])


def test_prompt_answer_encoding_puts_the_loss_on_answer_and_eos_only():
    from f3ocus_ray.data import train_tokenizer

    tok = train_tokenizer(["what organ is shown", "is there a lesion", "yes no liver"], 200)
    ids, mask, targets = encode_prompt_answer(
        tok, ["what organ is shown", "is there a lesion"], ["  Liver ", "YES"], 8, 3
    )
    assert ids.shape == mask.shape == targets.shape == (2, 12)
    liver, yes = tok.backend.token_to_id("liver"), tok.backend.token_to_id("yes")
    # [CLS] what organ is shown [SEP] liver [SEP]
    assert ids[0, :8].tolist() == [2, *ids[0, 1:5].tolist(), 3, liver, 3]
    assert targets[0].tolist() == [-100] * 5 + [liver, 3] + [-100] * 5
    assert mask[0].tolist() == [1] * 8 + [0] * 4
    p = int(np.flatnonzero(ids[1] == 3)[0])  # the prompt's [SEP]
    assert targets[1, p].item() == yes and targets[1, p + 1].item() == 3


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny-blip2", "tiny-llava"])
def test_teacher_forced_exact_match_equals_greedy_generation(name):
    """generative_exact_match on the wrapper's logits == `generate()` (greedy) producing exactly
    the answer and its EOS, on the transformers model with image placeholder tokens."""
    model, _ = build_model(spec(name, initializer_range=1.0))  # wide: fewer repeated tokens
    net, p, n = model.net, model.num_image_tokens, 8
    g = torch.Generator().manual_seed(1)
    pixels = torch.rand(n, 3, 32, 32, generator=g) * 2 - 1
    prompts = torch.randint(5, V, (n, Q), generator=g)
    full = torch.cat([torch.full((n, p), V), prompts], 1)
    kw = dict(max_new_tokens=A + 1, do_sample=False, pad_token_id=0)
    free = net.generate(pixel_values=pixels, input_ids=full, eos_token_id=None, **kw)
    checked = {True: 0, False: 0}
    for i in range(n):
        tokens = free[i, full.shape[1] :].tolist()
        # an answer the model would give: its first k greedy tokens, the next one as the EOS
        k = max((k for k in range(1, A + 1) if tokens[k] not in tokens[:k]), default=None)
        if k is None:
            continue
        answer, eos = tokens[:k], tokens[k]
        if i % 2:  # a wrong answer: one token changed
            answer[i % k] = (answer[i % k] - 4) % (V - 5) + 5
        ids = torch.tensor([[*prompts[i].tolist(), *answer, eos]])
        targets = torch.full_like(ids, -100)
        targets[0, Q - 1 : -1] = ids[0, Q:]
        logits = model(pixels[i : i + 1], ids, torch.ones_like(ids))
        teacher = bool(generative_exact_match(logits, targets)[0])
        out = net.generate(
            pixel_values=pixels[i : i + 1], input_ids=full[i : i + 1], eos_token_id=eos, **kw
        )[0, full.shape[1] :].tolist()
        assert teacher == (out == [*answer, eos])
        checked[teacher] += 1
    assert checked[True] >= 2 and checked[False] >= 2


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_two_federated_rounds_improve_the_loss(name, small_vqa, tmp_path):
    """Two rounds of the engine's own round (in this process) lower every family's test loss."""
    from f3ocus_ray.config import load_config
    from f3ocus_ray.fl.executors import InProcessExecutor, Job
    from f3ocus_ray.fl.round import Federation
    from f3ocus_ray.platform.prepare import prepare

    m = SPEC
    cfg = load_config(
        None,
        [
            f"data.path={small_vqa}",
            "data.image_size=32",
            "data.max_question_length=12",
            "data.clients=[chest_xray, oct]",
            f"model.name={name}",
            f"model.hidden_size={m.hidden_size}",
            f"model.num_layers={m.num_layers}",
            f"model.num_heads={m.num_heads}",
            f"model.intermediate_size={m.intermediate_size}",
            f"model.max_answer_length={A}",
            "federation.budgets=2",
            "federation.strategy=random",
            "training.local_steps=6",
            "training.batch_size=8",
            "training.lr=3e-3",
            f"output_dir={tmp_path}",
        ],
    )
    spec = prepare(cfg).driver_spec
    executor = InProcessExecutor(spec.worker)
    try:
        federation = Federation(spec, executor)
        versions = dict(federation.version)
        evals = executor.run(
            [Job("evaluate", (c, 0, federation.state, versions, None)) for c in spec.clients]
        )
        before = sum(e["loss_sum"] for e in evals) / sum(e["n"] for e in evals)
        results = [federation.run_round() for _ in range(2)]
    finally:
        executor.close()
    assert results[-1].loss < before, (before, [r.loss for r in results])


# -- real checkpoints, loaded from local folders --------------------------------------------------
def _logits(model, name):
    data = random_client(name, 3)
    torch.manual_seed(0)
    with torch.no_grad():
        return data.forward(model, slice(None))


@pytest.mark.parametrize("tiny", ["tiny-vilt", "tiny-blip", "tiny-blip2", "tiny-llava"])
def test_real_path_loads_a_local_checkpoint(tiny, tmp_path):
    real = tiny.removeprefix("tiny-")
    base = spec(tiny, vocab_size=V + 5) if tiny == "tiny-vilt" else spec(tiny)
    model, space = build_model(base)
    net = getattr(model, "net", None)
    if tiny == "tiny-blip":  # save the whole BlipForQuestionAnswering the parts come from
        from transformers import BlipForQuestionAnswering

        from f3ocus_ray.models.blip import tiny_blip_config

        torch.manual_seed(0)
        net = BlipForQuestionAnswering(tiny_blip_config(base))
        net.vision_model.load_state_dict(model.vision.state_dict())
        net.text_encoder.load_state_dict(model.text.state_dict())
    net.save_pretrained(tmp_path / "ckpt")
    cfg = parse_config({"model": {"name": real, "path": str(tmp_path / "ckpt"), "device": "cpu"}})
    assert cfg.model.num_layers == 4  # read from the checkpoint
    loaded, loaded_space = build_model(
        replace(base, name=real, path=str(tmp_path / "ckpt"), dtype="float32")
    )
    assert loaded_space.unit_names == space.unit_names and loaded_space.head == space.head
    torch.testing.assert_close(_logits(loaded, tiny), _logits(model, tiny))


def _albef_original_keys(model) -> dict[str, torch.Tensor]:
    """The tiny ALBEF's weights under the original checkpoint's names (timm ViT, xbert), plus
    what the loader must skip (momentum encoder, answer decoder)."""
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    out = {}
    vit = {
        "layernorm_before": "norm1",
        "attention.o_proj": "attn.proj",
        "layernorm_after": "norm2",
        "mlp.fc1": "mlp.fc1",
        "mlp.fc2": "mlp.fc2",
    }
    out["visual_encoder.cls_token"] = sd.pop("vision.embeddings.cls_token")
    out["visual_encoder.pos_embed"] = sd.pop("vision.embeddings.position_embeddings")
    for kind in ("weight", "bias"):
        out[f"visual_encoder.patch_embed.proj.{kind}"] = sd.pop(
            f"vision.embeddings.patch_embeddings.projection.{kind}"
        )
        out[f"visual_encoder.norm.{kind}"] = sd.pop(f"vision.layernorm.{kind}")
        for i in range(2):
            pre = f"vision.layers.{i}."
            out[f"visual_encoder.blocks.{i}.attn.qkv.{kind}"] = torch.cat(
                [sd.pop(f"{pre}attention.{p}_proj.{kind}") for p in "qkv"]
            )
            for ours, theirs in vit.items():
                out[f"visual_encoder.blocks.{i}.{theirs}.{kind}"] = sd.pop(f"{pre}{ours}.{kind}")
    for k in list(sd):
        if k.startswith("embeddings."):
            out["text_encoder." + k] = sd.pop(k)
        elif k.startswith("blocks."):
            out["text_encoder.encoder.layer." + k.removeprefix("blocks.")] = sd.pop(k)
    assert all(k.startswith("head.") or k.endswith("position_ids") for k in sd), list(sd)
    out["visual_encoder_m.pos_embed"] = torch.zeros(1)  # momentum model and decoder: skipped
    out["text_decoder.bert.embeddings.word_embeddings.weight"] = torch.zeros(1)
    return out


def test_albef_loads_the_original_checkpoint_keys(tmp_path):
    model, space = build_model(spec("tiny-albef"))
    path = tmp_path / "ALBEF_vqa.pth"
    torch.save({"model": _albef_original_keys(model), "epoch": 3}, path)
    cfg = parse_config({"model": {"name": "albef", "path": str(path)}})
    assert cfg.model.num_layers == 4
    loaded, loaded_space = build_model(spec("albef", path=str(path), dtype="float32"))
    assert loaded.sizes == model.sizes and loaded_space.unit_names == space.unit_names
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours if not k.startswith("head."))
    loaded.head.load_state_dict(model.head.state_dict())  # the answer head is new: not in ALBEF
    torch.testing.assert_close(_logits(loaded, "tiny-albef"), _logits(model, "tiny-albef"))


def test_config_refuses_real_models_without_a_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.path: required: 'llava' is loaded from a local"):
        parse_config({"model": {"name": "llava"}})
    with pytest.raises(ConfigError, match=r"model\.path: not found"):
        parse_config({"model": {"name": "blip2", "path": str(tmp_path / "nope")}})
    with pytest.raises(ConfigError, match=r"model\.path: cannot read"):
        parse_config({"model": {"name": "blip2", "path": str(tmp_path)}})
    with pytest.raises(ConfigError, match=r"model\.path: only for real checkpoints"):
        parse_config({"model": {"name": "tiny-llava", "path": str(tmp_path)}})
    (tmp_path / "config.json").write_text('{"text_config": {"num_hidden_layers": 32}}')
    cfg = parse_config(
        {"model": {"name": "llava", "path": str(tmp_path)}, "federation": {"budgets": 32}}
    )
    assert cfg.model.num_layers == 32
    with pytest.raises(ConfigError, match="exceeds the 32"):
        parse_config(
            {"model": {"name": "llava", "path": str(tmp_path)}, "federation": {"budgets": 33}}
        )
    with pytest.raises(
        ConfigError, match=r"model\.num_layers: the checkpoint has 32 blocks, not 4"
    ):
        parse_config({"model": {"name": "llava", "path": str(tmp_path), "num_layers": 4}})


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny-llava", "tiny-albef"])
def test_the_engine_worker_trains_scores_and_evaluates_a_family(name, small_vqa):
    """The engine's path, without Ray: config -> prepare -> ClientWorker (generative tensors,
    answers in the tokenizer's vocabulary, accuracy by exact match)."""
    from f3ocus_ray.fl.worker import ClientWorker
    from f3ocus_ray.platform.prepare import prepare
    from f3ocus_ray.task import score_of

    raw = {
        "data": {"path": str(small_vqa), "image_size": 32, "clients": ["oct", "fundus"]},
        "model": {
            "name": name,
            "hidden_size": 32,
            "num_layers": 4,
            "num_heads": 2,
            "intermediate_size": 64,
            "max_answer_length": 3,
        },
        "federation": {"budgets": 2, "strategy": "lntk"},
        "training": {"local_steps": 2, "batch_size": 8},
        "scoring": {"n_samples": 4},
    }
    prep = prepare(parse_config(raw))
    worker = ClientWorker(prep.driver_spec.worker)
    state = worker.initial_state()
    versions = dict.fromkeys(state, 0)
    raw_scores, _ = worker.score("oct", 0, state, versions)
    assert raw_scores.shape == (4,) and (raw_scores > 0).all()
    data = worker._client("oct", "train")
    assert data.task == ("generative" if is_generative(name) else "vqa")
    if is_generative(name):  # answers are whole words of the tokenizer, then EOS ([SEP])
        from f3ocus_ray.data.client_tensors import open_dataset
        from f3ocus_ray.data.generative import normalise_answer

        sp = prep.driver_spec.worker  # the data set and tokenizer the worker decoded with
        ds, tok = open_dataset(sp.data_path, sp.image_size, sp.tokenizer_json)
        answers = [ds.answers[i] for i in ds.client_split("oct", "train").answer_ids]
        for row, answer in zip(data.targets, answers, strict=True):
            row = row[row != -100].tolist()
            words = normalise_answer(answer).split()
            pieces = [tok.backend.id_to_token(i) for i in row[:-1]]
            assert (
                row[-1] == 3
                and pieces == words[: len(pieces)]
                and len(pieces) == min(3, len(words))
            )
    update = worker.train("oct", 1, np.array([True, False, False, True]), state, versions)
    assert update.n_samples == len(data) and np.isfinite(update.loss)
    assert set(update.tensors) == set(
        prep.driver_spec.worker and worker.space.trainable(np.array([True, False, False, True]))
    )
    sums = worker.evaluate("oct", 2, state, versions)
    assert sums["n"] > 0 and 0.0 <= score_of(sums, prep.facts.task) <= 1.0


def test_config_refuses_unit_modes_a_family_lacks():
    with pytest.raises(ConfigError, match=r"model\.unit_mode: 'prompt' .*tiny-vilt only"):
        parse_config({"model": {"name": "tiny-blip", "unit_mode": "prompt"}})
    with pytest.raises(ConfigError, match=r"model\.unit_mode: 'bias': tiny-llava's blocks have no"):
        parse_config({"model": {"name": "tiny-llava", "unit_mode": "bias"}})
    cfg = parse_config({"model": {"name": "tiny-llava", "unit_mode": "lora"}})
    assert cfg.model.unit_mode == "lora"


def test_generative_family_on_classification_data_is_refused_before_any_work(tmp_path):
    from f3ocus_ray.config import load_config
    from f3ocus_ray.errors import ConfigError
    from f3ocus_ray.platform.prepare import prepare

    cfg = load_config(
        None,
        [
            "model.name=tiny-llava",
            "data.synthetic.task=multilabel",
            "data.synthetic.samples_per_client=10",
            "data.image_size=32",
            f"data.cache_dir={tmp_path}",
        ],
    )
    with pytest.raises(ConfigError, match="model.name: tiny-llava answers questions"):
        prepare(cfg)


def test_a_real_bert_family_checkpoint_tokenizes_with_its_own_tokenizer(tmp_path):
    from f3ocus_ray.config import load_config
    from f3ocus_ray.data.tokenizer import tokenizer_to_json, train_tokenizer
    from f3ocus_ray.platform.prepare import prepare

    # the embedding has a row for each of its tokenizer's 87 tokens (checkpoint_check)
    model, _ = build_model(spec("tiny-vilt", vocab_size=128))
    model.net.save_pretrained(tmp_path / "ckpt")
    own = tokenizer_to_json(train_tokenizer(["a corpus that is not the questions"], 120))
    (tmp_path / "ckpt" / "tokenizer.json").write_text(own)
    (tmp_path / "ckpt" / "preprocessor_config.json").write_text("{}")  # its image processor
    overrides = [
        "model.name=vilt",
        f"model.path={tmp_path / 'ckpt'}",
        "model.device=cpu",
        "data.synthetic.scale=0.0005",
        "data.synthetic.min_per_client=10",
        "data.image_size=32",
        f"data.cache_dir={tmp_path}",
    ]
    prep = prepare(load_config(None, overrides))
    assert prep.facts.tokenizer_json == own and prep.driver_spec.worker.tokenizer_json == own
    # a checkpoint without its tokenizer is refused (models/checkpoint_check.py)
    (tmp_path / "ckpt" / "tokenizer.json").unlink()
    with pytest.raises(ConfigError, match=r"model.path: .*ckpt has no tokenizer"):
        prepare(load_config(None, overrides))
    # a tokenizer the BERT-style encoding cannot use is refused, naming the file
    (tmp_path / "ckpt" / "tokenizer.json").write_text(own.replace('"[SEP]"', '"[END]"'))
    with pytest.raises(ConfigError, match=r"model.path: .*tokenizer.json is not a BERT-style"):
        prepare(load_config(None, overrides))
