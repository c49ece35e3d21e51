"""The `f3ocus pretrain` config: a tiny family, its sizes, the corpus, the tokenizer, the
objectives and the optimiser (YAML, `--set` overrides, one error naming the field)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from f3ocus_ray.config import apply_override, read_text_file, safe_load_yaml
from f3ocus_ray.data.pretrain_tokenizer import min_vocab_size
from f3ocus_ray.errors import ConfigError
from f3ocus_ray.models.pretraining import PRETRAINERS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class PretrainModel(_Strict):
    hidden_size: int = Field(64, ge=8, le=4096)
    num_layers: int = Field(12, ge=1, le=64)
    num_heads: int = Field(4, ge=1, le=64)
    intermediate_size: int = Field(128, ge=8, le=16_384)
    patch_size: int = Field(8, ge=2, le=64)
    max_text_len: int = Field(40, ge=8, le=512, description="text positions (fine-tuning's max)")
    initializer_range: float = Field(0.02, gt=0)

    @model_validator(mode="after")
    def _heads_divide(self) -> PretrainModel:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"num_heads: {self.num_heads} must divide hidden_size")
        return self


class PretrainCorpus(_Strict):
    images: int = Field(6000, ge=8, le=1_000_000)
    image_size: int = Field(64, ge=16, le=512)
    held_out: int = Field(300, ge=1, description="images kept out of training, for accuracy")
    seed: int = Field(0, ge=0, lt=2**32)


class PretrainTokenizer(_Strict):
    vocab_size: int = Field(3000, ge=8, le=100_000)


class PretrainTraining(_Strict):
    steps: int = Field(3000, ge=1)
    batch_size: int = Field(32, ge=2, le=4096)
    lr: float = Field(1e-3, gt=0, le=1)
    warmup_steps: int = Field(100, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    mlm_probability: float = Field(0.15, gt=0, lt=1)
    objectives: list[str] = Field(default_factory=lambda: ["vqa", "mlm", "itm"])
    log_every: int = Field(50, ge=1, description="steps between MLflow metrics and log lines")


class PretrainTracking(_Strict):
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "f3ocus-pretrain"


class PretrainConfig(_Strict):
    name: str = Field("pretrained", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    family: str = "tiny-vilt"
    seed: int = Field(0, ge=0, lt=2**32)
    threads: int = Field(1, ge=1, le=256, description="torch threads (fixed: determinism)")
    model: PretrainModel = PretrainModel()
    corpus: PretrainCorpus = PretrainCorpus()
    tokenizer: PretrainTokenizer = PretrainTokenizer()
    training: PretrainTraining = PretrainTraining()
    tracking: PretrainTracking = PretrainTracking()

    @model_validator(mode="after")
    def _family_objectives(self) -> PretrainConfig:
        if self.family not in PRETRAINERS:
            raise ValueError(
                f"family: {self.family!r} cannot be pretrained yet; choose from {sorted(PRETRAINERS)}"
            )
        known = PRETRAINERS[self.family].objectives
        if bad := [o for o in self.training.objectives if o not in known]:
            raise ValueError(f"training.objectives: {bad} not among {self.family}'s {known}")
        if "vqa" not in self.training.objectives:
            raise ValueError("training.objectives: must include vqa")
        if self.tokenizer.vocab_size < (least := min_vocab_size()):
            raise ValueError(
                f"tokenizer.vocab_size: {self.tokenizer.vocab_size} is too small: characters "
                f"and general sub-words take {least}"
            )
        if self.corpus.held_out >= self.corpus.images:
            raise ValueError("corpus.held_out: must be fewer than corpus.images")
        if self.corpus.image_size % self.model.patch_size:
            raise ValueError("model.patch_size: must divide corpus.image_size")
        return self


def load_pretrain_config(path: str | Path, overrides: list[str] = ()) -> PretrainConfig:
    p = Path(path)
    raw: Any = safe_load_yaml(read_text_file(p, "pretrain config"), str(p)) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of sections")
    for assignment in overrides:
        apply_override(raw, assignment)
    try:
        return PretrainConfig.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{p}: {field + ': ' if field else ''}{msg}") from None
