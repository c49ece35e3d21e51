"""The experiment config: typed, strict, validated before any Ray work starts.

YAML in (safe loader only), `--set a.b=value` overrides, one clear `ConfigError` out naming the
field (and, for a typo, the closest valid key). Unknown keys are errors. The resolved config is
saved with every run (`to_yaml`).
"""

from __future__ import annotations

import copy
import difflib
import logging
import re
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from f3ocus_ray.errors import ConfigError
from f3ocus_ray.models.families import checkpoint_units
from f3ocus_ray.models.recipe import RecipeError, verify_checkpoint
from f3ocus_ray.models.registry import MODEL_NAMES, REAL
from f3ocus_ray.models.units import get_unit_mode, unit_mode_names
from f3ocus_ray.scoring.registry import scorer_names
from f3ocus_ray.strategies import scores_due, strategy_entry, strategy_names
from f3ocus_ray.strategies.base import SCHEDULES

log = logging.getLogger(__name__)


def registered(name: str, names: tuple[str, ...], kind: str) -> str:
    """`name` if it is one of a registry's `names`, else an error listing them."""
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown {kind} {name!r}{hint}; choose from {', '.join(names)}")
    return name


class _Strict(BaseModel):
    # strict: no silent coercion (a bool is not an int, "3" is not a number); ints are accepted
    # where a float is expected.
    # no NaN or infinity anywhere: a non-finite lr would only show as a NaN loss rounds later
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


# names that become folder names (runs/<name>-<time>): letters, digits, _ . -, not led by a dot
SAFE_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"

# seeds go to numpy's SeedSequence and torch.manual_seed (init_seed + 2 at most): 32 bits
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]


class SyntheticDataConfig(_Strict):
    """The embedded synthetic data set, generated (once, deterministically) when `path` is null."""

    task: Literal["vqa", "domain_gap", "multilabel", "mixed"] = Field(
        "vqa",
        description="vqa: the 9-client MedVQA-FL; domain_gap: 5 sources with their own image "
        "style and phrasing (Task 1); multilabel: 15 findings, Dirichlet label shift; mixed: "
        "3 MedVQA-FL clients + n_clients multilabel clients, one model with two heads (Task 6)",
    )
    seed: Seed = 0
    scale: float = Field(
        0.002,
        gt=0,
        le=100,
        description="vqa, mixed: fraction of the paper's client sizes (1.0: MedVQA-FL's 707,962 "
        "triplets)",
    )
    min_per_client: int = Field(40, ge=5, le=10_000_000)
    n_clients: int = Field(
        4, ge=1, le=1_000_000, description="multilabel, mixed: classification clients"
    )
    alpha: float = Field(0.5, gt=0, description="multilabel, mixed: Dirichlet concentration")
    samples_per_client: int = Field(
        250, ge=5, le=10_000_000, description="multilabel, mixed and domain_gap: samples per client"
    )
    workers: int = Field(
        1,
        ge=1,
        le=1024,
        description="processes that render the images (the files are the same for any number; "
        "not part of the set's cache key)",
    )


class DataConfig(_Strict):
    path: str | None = Field(None, description="folder in the on-disk format; null = synthetic")
    synthetic: SyntheticDataConfig = SyntheticDataConfig()
    cache_dir: str = Field("data", description="where the synthetic set is generated")
    image_size: int = Field(64, ge=8, le=4096)
    max_question_length: int = Field(16, ge=4, le=4096)
    tokenizer_vocab_size: int = Field(500, ge=50, le=1_000_000)
    clients: list[str] | None = Field(None, description="subset of client names; null = all")

    @field_validator("path")
    @classmethod
    def _path_exists(cls, v: str | None) -> str | None:
        if v is not None and not Path(v).expanduser().is_dir():
            raise ValueError(f"folder not found: {v}")
        return v

    @field_validator("clients")
    @classmethod
    def _some_clients(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("zero clients selected")
        return v


class ModelConfig(_Strict):
    """A model family: tiny (built from config with random weights, no download) or real (a
    local checkpoint). See the README's "Model families" and f3ocus_ray/models/registry.py."""

    name: Literal[MODEL_NAMES] = Field(  # type: ignore[valid-type]
        "tiny-vilt",
        description="tiny-*: built from the sizes below with random weights; vilt, blip, albef, "
        "blip2, llava: loaded from `path` (local files only); blip2 and llava answer by "
        "generation (accuracy = exact match), the others classify over the answers",
    )
    path: str | None = Field(
        None,
        validate_default=True,
        description="real models only: the local checkpoint folder (save_pretrained layout; "
        "albef: the original .pth file); num_layers is then read from it",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="real models: auto = bfloat16 on GPU, float32 on CPU"
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="real models: auto = the GPU when there is one (tiny ones: CPU)"
    )
    freeze_vision: bool = Field(
        True,
        description="the vision tower (BLIP-2: and its Q-Former) stays frozen; false: every "
        "client trains it with the head (not tiny-vilt)",
    )
    vision_layers: int = Field(
        2, ge=1, le=1024, description="tiny families: blocks of the vision tower"
    )
    max_answer_length: int = Field(
        4, ge=1, le=4096, description="generative families: answer tokens kept (the EOS follows)"
    )
    hidden_size: int = Field(64, ge=8, le=65_536)
    num_layers: int = Field(12, ge=1, le=1024)
    num_heads: int = Field(4, ge=1, le=1024)
    intermediate_size: int = Field(128, ge=8, le=262_144)
    patch_size: int = Field(8, ge=2, le=1024)
    init_seed: Seed = 0
    initializer_range: float = Field(
        0.1,
        gt=0,
        description="std of the random weights; wider than ViLT's 0.02, whose near-uniform "
        "random attention leaves frozen random blocks little to fine-tune on",
    )
    unit_mode: str = Field(
        "layers",
        description="what a client trains per unit, a registered unit mode "
        "(f3ocus_ray.models.units): per block the whole block (layers), its bottleneck "
        "adapter, its LoRA matrices (query and value, through peft), its LayerNorms or its "
        "biases; `prompt` (PromptFL): one unit, `prompt_length` learnable text prompt "
        "tokens, the backbone frozen; `dual_adapters` (FedDAT): per block a shared adapter "
        "(the unit, averaged) and a client-specific one (never sent), mutual distillation. "
        "Formerly `units`",
    )
    adapter_reduction: int = Field(
        16, ge=1, le=65_536, description="bottleneck = hidden_size / this"
    )
    lora_rank: int = Field(8, ge=1, le=65_536)
    prompt_length: int = Field(
        8,
        ge=1,
        le=4096,
        description="unit mode `prompt` (PromptFL): learnable prompt tokens after [CLS]",
    )
    train_head: bool = Field(True, description="every client trains the task head")
    distill_weight: float = Field(
        1.0, ge=0, description="unit mode `dual_adapters` (FedDAT): weight of the mutual KD term"
    )
    distill_temperature: float = Field(
        1.0, gt=0, description="unit mode `dual_adapters` (FedDAT): temperature of the mutual KD"
    )
    train_embeddings: bool = Field(
        False, description="the embeddings join the head (for random, not pretrained, weights)"
    )

    @property
    def num_units(self) -> int:
        """Selectable units: the unit mode's (one per block, or the single prompt: PromptFL)."""
        return get_unit_mode(self.unit_mode).num_units(self.num_layers)

    @model_validator(mode="before")
    @classmethod
    def _renamed_units(cls, raw: Any) -> Any:
        """`units` is the old name of `unit_mode`: accepted, with a deprecation message."""
        if not isinstance(raw, dict) or "units" not in raw:
            return raw
        if "unit_mode" in raw:
            raise ValueError("both model.units and model.unit_mode given: keep model.unit_mode")
        message = "model.units is deprecated: rename it to model.unit_mode"
        log.warning(message)  # what a command-line user sees
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return {("unit_mode" if k == "units" else k): v for k, v in raw.items()}

    @field_validator("unit_mode")
    @classmethod
    def _registered_unit_mode(cls, v: str, info: ValidationInfo) -> str:
        """A registered unit mode that runs on this family."""
        registered(v, unit_mode_names(), "unit mode")
        name = info.data.get("name")
        reason = get_unit_mode(v).unsupported(name) if name is not None else None
        if reason:
            raise ValueError(reason)
        return v

    @field_validator("num_heads")
    @classmethod
    def _divides_hidden(cls, v: int, info: ValidationInfo) -> int:
        hidden = info.data.get("hidden_size")
        if hidden is not None and hidden % v and info.data.get("name") not in REAL:
            raise ValueError(f"must divide model.hidden_size ({hidden})")
        return v

    @model_validator(mode="before")
    @classmethod
    def _units_of_checkpoint(cls, raw: Any) -> Any:
        """A real model's num_layers is its checkpoint's number of blocks (read from it)."""
        if not isinstance(raw, dict) or raw.get("name") not in REAL:
            return raw
        if not isinstance(raw.get("path"), str):
            return raw  # refused by _checkpoint_path
        units = checkpoint_units(raw["name"], raw["path"])
        if units is None or ("num_layers" in raw and raw["num_layers"] != units):
            return raw  # refused by _checkpoint_path
        return {**raw, "num_layers": units}

    @field_validator("path")
    @classmethod
    def _checkpoint_path(cls, v: str | None, info: ValidationInfo) -> str | None:
        name = info.data.get("name")
        if name not in REAL:
            if v is not None:
                raise ValueError(f"only for real checkpoints; {name!r} is built from config")
            return v
        if v is None:
            raise ValueError(f"required: {name!r} is loaded from a local checkpoint")
        if not Path(v).expanduser().exists():
            raise ValueError(f"not found: {v}")
        try:  # a pretrained folder (f3ocus pretrain): its files must be those its recipe hashed
            verify_checkpoint(v)
        except RecipeError as e:
            raise ValueError(str(e)) from None
        units = checkpoint_units(name, v)
        if units is None:
            what = "an ALBEF checkpoint file" if name == "albef" else "a folder with config.json"
            raise ValueError(f"cannot read {v}: expected {what}")
        return v

    @field_validator("num_layers")
    @classmethod
    def _layers_of_checkpoint(cls, v: int, info: ValidationInfo) -> int:
        name, path = info.data.get("name"), info.data.get("path")
        if name in REAL and path is not None:
            units = checkpoint_units(name, path)
            if units is not None and units != v:
                raise ValueError(f"the checkpoint has {units} blocks, not {v} (leave it unset)")
        return v


class FederationConfig(_Strict):
    rounds: int = Field(5, ge=1, le=1_000_000)
    budgets: int | list[int] = Field(
        4, description="layers per client: one for all, or one per client in client order"
    )
    strategy: str = Field(
        "last_k", description="a registered strategy (f3ocus_ray.strategies.strategy_names())"
    )
    clients_per_round: int | float | None = Field(
        None,
        description="partial participation: the clients that train each round, a count or a "
        "fraction in (0, 1] of the clients (rounded to the nearest count, at least 1), drawn "
        "afresh each round from (seed, round); null = every client. Only they score (when "
        "scores are due, or when one has no score yet), get units selected and send updates; "
        "FedAvg, Mbit and GFLOPs count them alone",
    )
    eval_clients_per_round: int | float | None = Field(
        None,
        description="the clients whose test split is evaluated after each round, a count or "
        "a fraction, drawn each round apart from the participants; null = every client. The "
        "last round always evaluates every client, so the run's final score is over all of "
        "them; a round's `score` is over the clients it evaluated (metric `eval_clients`)",
    )

    @field_validator("strategy")
    @classmethod
    def _registered_strategy(cls, v: str) -> str:
        return registered(v, strategy_names(), "strategy")

    @field_validator("clients_per_round", "eval_clients_per_round")
    @classmethod
    def _count_or_fraction(cls, v: int | float | None) -> int | float | None:
        if isinstance(v, float) and not 0 < v <= 1:
            raise ValueError(f"a fraction must lie in (0, 1], got {v}")
        if isinstance(v, int) and not 1 <= v <= 100_000_000:
            raise ValueError(f"a count must lie in [1, 100000000], got {v}")
        return v


def clients_of(value: int | float | None, n_clients: int, key: str) -> int:
    """How many of `n_clients` a count-or-fraction setting `key` means (None: all)."""
    if value is None:
        return n_clients
    if isinstance(value, float):
        return max(1, round(value * n_clients))
    if value > n_clients:
        raise ConfigError(f"{key}: {value} is more than the {n_clients} clients")
    return value


class ScoringConfig(_Strict):
    """Layer importance computed on the clients (see f3ocus_ray.scoring).

    `schedule`: `off`, `every_round`, `once` (round 1 only, reused after) or `every_k` rounds.
    """

    method: str = Field("lntk", description="a registered scoring method")
    mode: Literal["loss", "logits"] = Field(
        "loss", description="LNTK: per-sample loss Gram matrix, or the logits' kernel (Lanczos)"
    )
    n_samples: int = Field(
        64, ge=1, le=1_000_000, description="samples of the client's train split scored"
    )
    schedule: Literal[SCHEDULES] = "off"  # type: ignore[valid-type]
    every_k: int = Field(1, ge=1, le=1_000_000)
    chunk_size: int = Field(
        16,
        ge=1,
        le=65_536,
        description="samples per batched pass or vmapped call (unless vmap_size); with "
        "gradient_budget_mb it bounds the per-sample gradients held at once: chunk_size x "
        "params of the largest unit x 4 bytes (f3ocus_ray/scoring/per_sample.py)",
    )
    gradient_budget_mb: float = Field(
        64.0,
        ge=0,
        le=1_048_576,
        description="LNTK loss mode, SNR, Fisher: per-sample gradients may use up to "
        "max(this, chunk_size x params of the largest unit x 4 bytes); a unit whose n rows do "
        "not fit is done in row blocks (slower: about n²/chunk_size instead of n per-sample "
        "gradients); 0 = the chunk bound alone",
    )
    vmap_size: int | None = Field(
        None,
        ge=1,
        le=65_536,
        description="LNTK loss mode, SNR, Fisher: samples per vmapped per-sample-gradient call "
        "(activations grow with it); null = chunk_size. Big models: 1-2",
    )
    tol: float = Field(1e-6, gt=0, description="Lanczos relative residual (logits mode)")
    max_iter: int = Field(
        100, ge=1, le=1_000_000, description="Lanczos iteration cap (logits mode)"
    )

    @field_validator("method")
    @classmethod
    def _registered_method(cls, v: str) -> str:
        return registered(v, scorer_names(), "scoring method")

    def due(self, round_idx: int) -> bool:
        """Whether scores are computed in (0-based) round `round_idx`."""
        return scores_due(self.schedule, self.every_k, round_idx)


class SelectionConfig(_Strict):
    """The server's multi-objective refinement (strategy `f3ocus`; see f3ocus_ray.selection)."""

    algorithm: str = Field(
        "nsga2", description="a registered algorithm (f3ocus_ray.selection.algorithm_names())"
    )
    budget_mode: Literal["exact", "at_most"] = "exact"
    pick: Literal[
        "knee", "weighted", "max_importance_under_variance", "min_variance_over_importance"
    ] = "knee"
    pick_param: float | None = Field(None, description="alpha or fraction of the pick rule")
    max_evals: int = Field(
        20_000, ge=1, le=100_000_000, description="mask evaluations per selection"
    )
    params: dict[str, int | float | bool | str | None] = Field(
        default_factory=dict, description="the algorithm's parameters (see its dataclass)"
    )

    @field_validator("algorithm")
    @classmethod
    def _registered_algorithm(cls, v: str) -> str:
        from f3ocus_ray.selection import algorithm_names

        return registered(v, algorithm_names(), "selection algorithm")

    @field_validator("params")
    @classmethod
    def _known_params(cls, v: dict, info: ValidationInfo) -> dict:
        from f3ocus_ray.selection import SelectionError, make_params

        if "algorithm" not in info.data:
            return v  # the algorithm itself was refused
        try:
            make_params(info.data["algorithm"], v)
        except SelectionError as e:
            raise ValueError(str(e)) from None
        return v


class TrainingConfig(_Strict):
    local_epochs: int = Field(1, ge=1, le=10_000)
    local_steps: int | None = Field(
        None, ge=1, le=10_000_000, description="if set, overrides local_epochs"
    )
    batch_size: int = Field(16, ge=1, le=1_000_000)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    eval_batch_size: int = Field(64, ge=1, le=1_000_000)
    precision: Literal["fp32", "bf16"] = Field(
        "fp32",
        description="fp32, or bf16: forward and loss under CUDA bf16 autocast (weights, "
        "gradients and AdamW keep model.dtype); bf16 needs a GPU model (refused on the CPU)",
    )
    micro_batch_size: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="gradient accumulation: each batch runs in micro-batches of this size, "
        "their losses weighted so the step's gradient is the whole batch's; null = one pass",
    )
    gradient_checkpointing: bool = Field(
        False,
        description="recompute the transformer blocks' activations in the backward pass "
        "(less memory, about one more forward per step); every family supports it",
    )

    @model_validator(mode="after")
    def _micro_batch(self) -> TrainingConfig:
        if self.micro_batch_size is not None and self.micro_batch_size > self.batch_size:
            raise ValueError(
                f"micro_batch_size ({self.micro_batch_size}) is larger than "
                f"batch_size ({self.batch_size})"
            )
        return self


class EngineConfig(_Strict):
    num_workers: int = Field(2, ge=1, le=100_000)
    cpus_per_worker: float = Field(1.0, gt=0, le=1024)
    gpus_per_worker: float = Field(0.0, ge=0, le=64)
    resources_per_worker: dict[str, float] = Field(
        default_factory=dict,
        description="custom Ray resources each ClientWorker reserves (in its placement-group "
        "bundle and its actor options), e.g. {'accelerator_type:A100': 0.001} to pin workers "
        "to a node type; CPU and GPU go in cpus_per_worker / gpus_per_worker",
    )
    max_worker_restarts: int = Field(3, ge=0, le=1000)
    address: str | None = Field(None, description="Ray cluster address; null = start local Ray")
    data_cache_dir: str | None = Field(
        None,
        description="folder of the decoded cache (each client split decoded once, shared by the "
        "workers of a node, read per batch); null = .f3ocus-cache under the data set's folder",
    )
    worker_cache_mb: float = Field(
        1024.0,
        ge=0,
        description="MiB of client splits a worker holds in memory (on its device), least "
        "recently used evicted first; a larger split streams from the decoded cache; 0 = stream all",
    )

    @field_validator("resources_per_worker")
    @classmethod
    def _custom_resources(cls, v: dict[str, float]) -> dict[str, float]:
        for name, amount in v.items():
            if name in ("CPU", "GPU", "memory", "object_store_memory"):
                raise ValueError(f"{name!r}: use cpus_per_worker / gpus_per_worker for it")
            if not amount > 0:
                raise ValueError(f"{name!r}: the amount must be > 0 (got {amount})")
        return v


class TrackingConfig(_Strict):
    enabled: bool = True
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "f3ocus"


class ExperimentConfig(_Strict):
    # a folder name under output_dir: no separators, not "." or ".."
    name: str = Field("experiment", pattern=SAFE_NAME, max_length=100)
    seed: Seed = 0
    output_dir: str = "runs"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    federation: FederationConfig = FederationConfig()
    training: TrainingConfig = TrainingConfig()
    scoring: ScoringConfig = ScoringConfig()
    selection: SelectionConfig = SelectionConfig()
    engine: EngineConfig = EngineConfig()
    tracking: TrackingConfig = TrackingConfig()

    @model_validator(mode="after")
    def _check_budgets(self) -> ExperimentConfig:
        budgets = self.federation.budgets
        values = budgets if isinstance(budgets, list) else [budgets]
        if not values:
            raise ValueError("federation.budgets: empty list")
        for b in values:
            if b < 1:
                raise ValueError(f"federation.budgets: budget {b} is below 1")
            units = self.model.num_units
            if units < self.model.num_layers and b > units and self.federation.strategy != "full":
                # strategy full ignores budgets: a unit mode with fewer units runs with any
                raise ValueError(
                    f"federation.budgets: budget {b} exceeds the {units} selectable "
                    f"unit{'s' if units > 1 else ''} (model.unit_mode: {self.model.unit_mode})"
                )
            if b > self.model.num_layers:
                raise ValueError(
                    f"federation.budgets: budget {b} exceeds the {self.model.num_layers} "
                    "selectable layers (model.num_layers)"
                )
        return self

    @model_validator(mode="after")
    def _check_scoring(self) -> ExperimentConfig:
        needed = strategy_entry(self.federation.strategy).scorer
        if needed and "method" in self.scoring.model_fields_set and self.scoring.method != needed:
            raise ValueError(
                f"scoring.method: strategy '{self.federation.strategy}' ranks units by "
                f"'{needed}', not '{self.scoring.method}'"
            )
        return self

    @model_validator(mode="after")
    def _check_patches(self) -> ExperimentConfig:
        """A tiny model cuts the image into patches (a real one brings its own patch size)."""
        if self.model.name not in REAL and self.data.image_size % self.model.patch_size:
            raise ValueError(
                f"model.patch_size: {self.model.patch_size} must divide data.image_size "
                f"({self.data.image_size})"
            )
        return self

    @model_validator(mode="after")
    def _check_precision(self) -> ExperimentConfig:
        """bf16 autocast runs on CUDA only: refuse a model the config already puts on the CPU
        (the worker refuses too, should `auto` find no GPU)."""
        if self.training.precision != "bf16":
            return self
        m = self.model
        on_cpu = m.device == "cpu" or (m.name not in REAL and m.device != "cuda")
        if on_cpu or self.engine.gpus_per_worker == 0:
            raise ValueError(
                "training.precision: bf16 autocasts on CUDA only; this config trains on the "
                "CPU (set model.device: cuda (tiny families) or auto/cuda (real ones) and "
                "engine.gpus_per_worker > 0, or use precision fp32)"
            )
        return self

    def effective_scoring(self) -> ScoringConfig | None:
        """What the clients score, and when: a score-based strategy scores with its own method,
        every round unless `scoring.schedule` says otherwise; None when nothing is scored."""
        needed = strategy_entry(self.federation.strategy).scorer
        sc = self.scoring
        if needed is None:
            return sc if sc.schedule != "off" else None
        schedule = sc.schedule if sc.schedule != "off" else "every_round"
        return sc.model_copy(update={"method": needed, "schedule": schedule})

    def budgets_for(self, n_clients: int) -> list[int]:
        """One budget per client, in client order; a list must name every client."""
        b = self.federation.budgets
        if isinstance(b, int):
            return [b] * n_clients
        if len(b) != n_clients:
            raise ConfigError(f"federation.budgets: {len(b)} budgets given for {n_clients} clients")
        return list(b)

    def clients_per_round_for(self, n_clients: int) -> tuple[int, int]:
        """(clients that train, clients evaluated) per round, for `n_clients` clients; a
        count larger than the clients is an error."""
        f = self.federation
        return (
            clients_of(f.clients_per_round, n_clients, "federation.clients_per_round"),
            clients_of(f.eval_clients_per_round, n_clients, "federation.eval_clients_per_round"),
        )

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def flat(self) -> dict[str, Any]:
        """Dotted keys -> values, for MLflow params."""
        return flatten(self.model_dump(mode="json"))


# --- YAML with floats like 1e-3 (PyYAML reads those as strings by YAML 1.1 rules) ---------


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        """A key given twice is an error (PyYAML keeps the last one silently)."""
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"duplicate key {key!r}",
                    key_node.start_mark,
                )  # fmt: skip
            seen.add(key)
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def read_text_file(path: Path, what: str) -> str:
    """A UTF-8 text file's contents, or one ConfigError naming the file."""
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}): {what} must be YAML") from None


def safe_load_yaml(text: str, source: str = "<string>") -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{source}: not valid YAML: {e.problem}{where}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {e}") from None


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def set_dotted(raw: dict[str, Any], key: str, value: Any, source: str = "") -> None:
    """raw[a][b] = value for key "a.b", creating sections; a value in the way is an error."""
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}{key}: {'.'.join(parts[: i + 1])} is not a section")
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def get_dotted(raw: dict[str, Any], key: str, default: Any = None) -> Any:
    """raw[a][b] for key "a.b", or `default` where the path does not exist."""
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one `a.b=value` override in place; the value is parsed as YAML (`3`, `1e-3`, `[1,2]`)."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. federation.rounds=3")
    key, value = assignment.split("=", 1)
    key = key.strip()
    set_dotted(raw, key, safe_load_yaml(value, f"--set {key}"), source="--set ")


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config section a validation error location points into (for key suggestions)."""
    model: type[BaseModel] = ExperimentConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


def _describe(err: dict[str, Any]) -> str:
    loc = tuple(p for p in err["loc"] if not str(p).startswith("function-after"))
    field = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        section = _model_at(loc)
        hint = ""
        if section is not None:
            close = difflib.get_close_matches(str(loc[-1]), list(section.model_fields), n=1)
            if close:
                hint = f"; did you mean '{'.'.join([*map(str, loc[:-1]), close[0]])}'?"
        return f"{field}: unknown key{hint}"
    msg = err["msg"]
    if err["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
        return msg if not field else f"{field}: {msg}"
    got = err.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{field}: {msg}{shown}" if field else f"{msg}{shown}"


def parse_config(raw: Any, source: str = "config") -> ExperimentConfig:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        more = len(e.errors()) - 1
        suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(f"{source}: {_describe(first)}{suffix}") from None


def load_config(path: str | Path | None, overrides: list[str] = ()) -> ExperimentConfig:
    """Read a YAML experiment (or the defaults when `path` is None) and apply `--set` overrides."""
    raw: dict[str, Any] = {}
    source = "config"
    if path is not None:
        p = Path(path)
        source = str(p)
        raw = safe_load_yaml(read_text_file(p, "config file"), source)
        if raw is None:
            raise ConfigError(f"{source}: the config file is empty (no sections)")
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: the top level must be a mapping of sections")
    for assignment in overrides:
        apply_override(raw, assignment)
    return parse_config(raw, source)
