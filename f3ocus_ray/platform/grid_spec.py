"""A grid: a base experiment, axes over any config key, exclusions, Tune settings, search.

```yaml
name: smoke_grid
base: demo.yaml                # a path (relative to this file) or an inline mapping
set: {federation.rounds: 2}    # overrides of the base (dotted keys)
axes:
  selection.algorithm: [nsga2, abc]      # one key, a list of values
  method:                                # a named axis of labelled bundles of keys
    last_k: {federation.strategy: last_k}
    f3ocus: {federation.strategy: f3ocus, selection.algorithm: nsga2}
exclude:
  - {method: last_k, selection.algorithm: abc}
tune: {max_concurrent_trials: 2, storage_path: null, max_failures: 1}
```

Expansion is the cartesian product of the axes in file order, minus exclusions; every trial's
config is parsed (strict) before any work starts. A bundle key starting with `_` is metadata,
not config: `_clients: 5` states a task's client count for the dry run when its data is absent.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from f3ocus_ray.config import (
    SAFE_NAME,
    ExperimentConfig,
    _Strict,
    apply_override,
    parse_config,
    read_text_file,
    safe_load_yaml,
    set_dotted,
)
from f3ocus_ray.errors import ConfigError
from f3ocus_ray.platform.uris import resolve_tracking_uri


class TuneSettings(_Strict):
    max_concurrent_trials: int = Field(1, ge=1)
    storage_path: str | None = Field(
        None, description="local folder (default ./ray_results), s3://, gs:// or a shared FS"
    )
    max_failures: int = Field(1, ge=-1, description="retries of a failed trial (FailureConfig)")
    fail_fast: bool = False
    driver_cpus: float = Field(1.0, gt=0, description="the CPU bundle of the trial's driver")
    driver_resources: dict[str, float] = Field(
        default_factory=dict,
        description="custom Ray resources added to the driver's bundle, e.g. "
        "{'node:__internal_head__': 0.001}: every trial's driver on the head node, where the "
        "cluster's MLflow server listens on localhost (cluster/README.md)",
    )
    metric: str = "score"
    mode: Literal["max", "min"] = "max"


class SearchParam(_Strict):
    type: Literal["uniform", "loguniform", "int", "choice"] = "uniform"
    low: float | None = None
    high: float | None = None
    values: list[Any] | None = None


class SearchSettings(_Strict):
    """Optuna over continuous (or integer) keys instead of a grid."""

    metric: str = "score"
    mode: Literal["max", "min"] = "max"
    num_samples: int = Field(8, ge=1)
    max_concurrent: int = Field(1, ge=1)
    seed: int = 0
    space: dict[str, SearchParam]


class CostSettings(_Strict):
    """Stated costs for the dry run (seconds per client and round, per model name)."""

    seconds_per_client_round: dict[str, float] = Field(default_factory=dict)
    setup_seconds: float = Field(20.0, ge=0)


class GridFile(_Strict):
    name: str = Field(pattern=SAFE_NAME, max_length=100)
    base: str | dict[str, Any] | None = None
    set: dict[str, Any] = Field(default_factory=dict)
    axes: dict[str, list[Any] | dict[str, dict[str, Any]]] = Field(default_factory=dict)
    exclude: list[dict[str, Any]] = Field(default_factory=list)
    tune: TuneSettings = TuneSettings()
    search: SearchSettings | None = None
    cost: CostSettings = CostSettings()


@dataclass(frozen=True)
class Trial:
    index: int
    axes: dict[str, Any]  # axis name -> value (or bundle label)
    raw: dict[str, Any]  # the trial's raw config mapping
    meta: dict[str, Any]  # bundle metadata (`_clients`, ...)
    cfg: ExperimentConfig | None  # None when the config is refused
    error: str | None = None

    @property
    def key(self) -> str:
        return f"trial_{self.index:05d}"

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.axes.items())


@dataclass
class Grid:
    spec: GridFile
    source: Path
    base_raw: dict[str, Any]
    trials: list[Trial] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    def refused(self) -> list[Trial]:
        return [t for t in self.trials if t.cfg is None]


def _absolute(raw: dict[str, Any], root: Path) -> None:
    """Relative paths become absolute here, so trials (whose working dir is their trial
    folder) and every process on the node agree."""
    data = raw.setdefault("data", {})
    for key in ("path", "cache_dir"):
        v = data.get(key, "data" if key == "cache_dir" else None)
        if isinstance(v, str) and "://" not in v and not Path(v).expanduser().is_absolute():
            data[key] = str((root / v).resolve())
    model = raw.get("model")
    v = model.get("path") if isinstance(model, dict) else None  # a checkpoint folder
    if isinstance(v, str) and not Path(v).expanduser().is_absolute():
        model["path"] = str((root / v).resolve())
    out = raw.get("output_dir", "runs")
    if isinstance(out, str) and not Path(out).is_absolute():
        raw["output_dir"] = str((root / out).resolve())
    tr = raw.setdefault("tracking", {})
    tr["uri"] = resolve_tracking_uri(str(tr.get("uri", "sqlite:///mlflow.db")), root)


def _short_error(e: Exception) -> str:
    return str(e).split(": ", 1)[-1] if isinstance(e, ConfigError) else str(e)


def load_grid(path: str | Path, overrides: list[str] = (), cwd: Path | None = None) -> Grid:
    """Read a grid YAML, expand it and parse every trial's config (refusals are kept)."""
    p = Path(path)
    raw = safe_load_yaml(read_text_file(p, "grid file"), str(p))
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: the top level must be a mapping")
    try:
        spec = GridFile.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"{p}: {where}: {err['msg']}") from None
    if isinstance(spec.base, str):
        bp = (p.parent / spec.base) if not Path(spec.base).is_absolute() else Path(spec.base)
        base = safe_load_yaml(read_text_file(bp, f"the base of {p}"), str(bp)) or {}
    else:
        base = copy.deepcopy(spec.base or {})
    for k, v in spec.set.items():
        set_dotted(base, k, v)
    for assignment in overrides:
        apply_override(base, assignment)
    grid = Grid(spec, p, base)
    grid.trials = expand(spec, base, cwd or Path.cwd())
    return grid


def _axis_values(values: list[Any] | dict[str, dict[str, Any]]) -> list[tuple[Any, dict, dict]]:
    """(shown value, overrides, metadata) per value of one axis."""
    if isinstance(values, dict):
        out = []
        for label, bundle in values.items():
            over = {k: v for k, v in bundle.items() if not k.startswith("_")}
            meta = {k[1:]: v for k, v in bundle.items() if k.startswith("_")}
            out.append((label, over, meta))
        return out
    return [(v, None, {}) for v in values]


def _excluded(axes: dict[str, Any], rules: list[dict[str, Any]]) -> bool:
    return any(all(k in axes and axes[k] == v for k, v in rule.items()) for rule in rules)


def expand(spec: GridFile, base: dict[str, Any], root: Path) -> list[Trial]:
    for rule in spec.exclude:
        unknown = [k for k in rule if k not in spec.axes]
        if unknown:
            raise ConfigError(f"exclude: {unknown[0]!r} is not an axis ({list(spec.axes)})")
    for name, values in spec.axes.items():
        if not values:
            raise ConfigError(f"axes.{name}: no values")
    names = list(spec.axes)
    choices = [_axis_values(spec.axes[n]) for n in names]
    trials: list[Trial] = []
    cache: dict[str, tuple[ExperimentConfig | None, str | None]] = {}
    for combo in itertools.product(*choices):
        axes = {n: c[0] for n, c in zip(names, combo, strict=True)}
        if _excluded(axes, spec.exclude):
            continue
        raw = copy.deepcopy(base)
        meta: dict[str, Any] = {}
        for n, (value, over, m) in zip(names, combo, strict=True):
            if over is None:
                set_dotted(raw, n, value)
            else:
                for k, v in over.items():
                    set_dotted(raw, k, v)
            meta.update(m)
        raw.setdefault("name", spec.name)
        _absolute(raw, root)
        key = repr(raw)
        if key not in cache:
            try:
                cache[key] = (parse_config(raw, "trial"), None)
            except ConfigError as e:
                cache[key] = (None, _short_error(e))
        cfg, err = cache[key]
        trials.append(Trial(len(trials), axes, raw, meta, cfg, err))
    return trials


def check_runnable(grid: Grid) -> None:
    """Refuse the whole grid, naming the axis values, when any trial's config is invalid;
    then check what needs the data (clients, budgets) once per distinct data config."""
    if grid.refused():
        t = grid.refused()[0]
        more = len(grid.refused()) - 1
        suffix = f" (and {more} more trial{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(f"{grid.source}: trial {t.index} ({t.label()}): {t.error}{suffix}")
    from f3ocus_ray.models.checkpoint_check import check_checkpoint
    from f3ocus_ray.models.families import check_task
    from f3ocus_ray.platform.data_prep import prepare_data

    for t in grid.trials:  # every checkpoint before any data is written (cached per folder)
        try:
            check_checkpoint(t.cfg.model.name, t.cfg.model.path)
        except ConfigError as e:
            raise ConfigError(f"{grid.source}: trial {t.index} ({t.label()}): {e}") from None
    facts: dict[str, Any] = {}
    for t in grid.trials:
        cfg = t.cfg
        key = cfg.data.model_dump_json()
        try:
            if key not in facts:
                facts[key] = prepare_data(cfg.data)  # also generates the synthetic set once
            cfg.budgets_for(len(facts[key].clients))
            cfg.clients_per_round_for(len(facts[key].clients))
            check_task(cfg.model.name, facts[key].task)
        except ConfigError as e:
            raise ConfigError(f"{grid.source}: trial {t.index} ({t.label()}): {e}") from None
