"""A config and its data's facts -> the specs the engine runs: every user error is raised here,
before Ray starts or an MLflow run is created."""

from __future__ import annotations

from dataclasses import dataclass, replace

from f3ocus_ray.config import ExperimentConfig
from f3ocus_ray.fl.executors import RayPool
from f3ocus_ray.fl.round import DriverSpec
from f3ocus_ray.fl.worker import ScoringSettings, TrainSettings, WorkerSpec
from f3ocus_ray.models import ModelSpec
from f3ocus_ray.platform.data_prep import DataFacts, prepare_data


@dataclass(frozen=True)
class PreparedExperiment:
    """A validated experiment ready to run: all user errors are behind us."""

    cfg: ExperimentConfig
    facts: DataFacts
    budgets: list[int]
    driver_spec: DriverSpec


def prepare(cfg: ExperimentConfig) -> PreparedExperiment:
    from f3ocus_ray.models.families import REAL, check_task, checkpoint_tokenizer, is_generative

    facts = prepare_data(cfg.data, answers_in_vocab=is_generative(cfg.model.name))
    check_task(cfg.model.name, facts.task)
    own = checkpoint_tokenizer(cfg.model.name, cfg.model.path)
    if own is not None:  # a real checkpoint's embeddings want their own token ids
        from tokenizers import Tokenizer

        vocab = Tokenizer.from_str(own).get_vocab_size()
        facts = replace(facts, tokenizer_json=own, vocab_size=vocab)
    budgets = cfg.budgets_for(len(facts.clients))
    m = cfg.model
    model_spec = ModelSpec(
        name=m.name,
        hidden_size=m.hidden_size,
        num_layers=m.num_layers,
        num_heads=m.num_heads,
        intermediate_size=m.intermediate_size,
        patch_size=m.patch_size,
        image_size=cfg.data.image_size,
        vocab_size=facts.vocab_size,
        max_text_len=cfg.data.max_question_length,
        num_outputs=facts.num_outputs,
        output_blocks=facts.output_blocks,
        init_seed=m.init_seed,
        train_embeddings=m.train_embeddings,
        initializer_range=m.initializer_range,
        units=m.units,
        adapter_reduction=m.adapter_reduction,
        lora_rank=m.lora_rank,
        prompt_length=m.prompt_length,
        path=m.path,
        dtype=m.dtype,
        # tiny models stay on the CPU unless the GPU is asked for by name
        device=m.device if m.name in REAL or m.device == "cuda" else "cpu",
        freeze_vision=m.freeze_vision,
        vision_layers=m.vision_layers,
        max_answer_len=m.max_answer_length,
    )
    tr, eng = cfg.training, cfg.engine
    sc = cfg.effective_scoring()
    worker = WorkerSpec(
        model=model_spec,
        data_path=str(facts.path),
        image_size=cfg.data.image_size,
        tokenizer_json=facts.tokenizer_json,
        max_text_len=cfg.data.max_question_length,
        training=TrainSettings(
            local_epochs=tr.local_epochs,
            local_steps=tr.local_steps,
            batch_size=tr.batch_size,
            lr=tr.lr,
            weight_decay=tr.weight_decay,
            eval_batch_size=tr.eval_batch_size,
            train_head=m.train_head,
            distill_weight=m.distill_weight,
            distill_temperature=m.distill_temperature,
        ),
        torch_threads=max(1, int(eng.cpus_per_worker)),
        scoring=None
        if sc is None
        else ScoringSettings(
            method=sc.method,
            mode=sc.mode,
            n_samples=sc.n_samples,
            chunk_size=sc.chunk_size,
            tol=sc.tol,
            max_iter=sc.max_iter,
        ),
    )
    spec = DriverSpec(
        clients=facts.clients,
        budgets=budgets,
        n_train=facts.n_train,
        n_test=facts.n_test,
        task=facts.task,
        strategy=cfg.federation.strategy,
        seed=cfg.seed,
        worker=worker,
        pool=RayPool(
            num_workers=eng.num_workers,
            cpus_per_worker=eng.cpus_per_worker,
            gpus_per_worker=eng.gpus_per_worker,
            max_worker_restarts=eng.max_worker_restarts,
            resources_per_worker=dict(eng.resources_per_worker),
        ),
        unit_names=(
            ["prompt"] if m.units == "prompt" else [f"layer{i}" for i in range(m.num_layers)]
        ),
        scoring=sc,
        selection=cfg.selection,
    )
    return PreparedExperiment(cfg, facts, budgets, spec)
