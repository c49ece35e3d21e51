"""A config and its data's facts -> the specs the engine runs: every user error is raised here,
before Ray starts or an MLflow run is created."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from f3ocus_ray.config import ExperimentConfig
from f3ocus_ray.fl.executors import RayPool
from f3ocus_ray.fl.round import DriverSpec
from f3ocus_ray.fl.worker import WorkerSpec
from f3ocus_ray.models import ModelSpec
from f3ocus_ray.models.units import get_unit_mode
from f3ocus_ray.platform.data_prep import DataFacts, decoded_cache_dir, prepare_data


@dataclass(frozen=True)
class PreparedExperiment:
    """A validated experiment ready to run: all user errors are behind us."""

    cfg: ExperimentConfig
    facts: DataFacts
    budgets: list[int]
    driver_spec: DriverSpec


def worker_modules(model_name: str) -> list[str]:
    """What a ClientWorker of this model imports: its class's module and the family's."""
    from f3ocus_ray.models.registry import FAMILIES

    family = FAMILIES[model_name].builder.split(":")[0]
    return ["f3ocus_ray.fl.worker", f"f3ocus_ray.models.{family}"]


def prepare(cfg: ExperimentConfig) -> PreparedExperiment:
    from f3ocus_ray.models.checkpoint_check import check_checkpoint
    from f3ocus_ray.models.families import check_task, checkpoint_tokenizer, is_generative

    check_checkpoint(cfg.model.name, cfg.model.path)  # before any data is written
    facts = prepare_data(cfg.data, answers_in_vocab=is_generative(cfg.model.name))
    check_task(cfg.model.name, facts.task)
    own = checkpoint_tokenizer(cfg.model.name, cfg.model.path)
    if own is not None:  # a real checkpoint's embeddings want their own token ids
        from tokenizers import Tokenizer

        vocab = Tokenizer.from_str(own).get_vocab_size()
        facts = replace(facts, tokenizer_json=own, vocab_size=vocab)
    budgets = cfg.budgets_for(len(facts.clients))
    per_round, eval_per_round = cfg.clients_per_round_for(len(facts.clients))
    m, eng = cfg.model, cfg.engine
    worker = WorkerSpec(
        model=ModelSpec.from_config(
            m,
            image_size=cfg.data.image_size,
            vocab_size=facts.vocab_size,
            max_text_len=cfg.data.max_question_length,
            num_outputs=facts.num_outputs,
            output_blocks=facts.output_blocks,
            # absolute: a worker's (or trial's) working dir is not the launcher's
            path=str(Path(m.path).expanduser().resolve()) if m.path else None,
        ),
        data_path=str(facts.path),
        image_size=cfg.data.image_size,
        tokenizer_json=facts.tokenizer_json,
        max_text_len=cfg.data.max_question_length,
        training=cfg.training,
        torch_threads=max(1, int(eng.cpus_per_worker)),
        scoring=cfg.effective_scoring(),
        data_cache_dir=decoded_cache_dir(eng.data_cache_dir, facts.path),
        worker_cache_mb=eng.worker_cache_mb,
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
        unit_names=get_unit_mode(m.unit_mode).unit_names(m.num_layers),
        scoring=worker.scoring,
        selection=cfg.selection,
        clients_per_round=per_round,
        eval_clients_per_round=eval_per_round,
        rounds=cfg.federation.rounds,
    )
    return PreparedExperiment(cfg, facts, budgets, spec)
