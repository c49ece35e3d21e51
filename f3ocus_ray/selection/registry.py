"""The one table of selection algorithms: name -> (parameter dataclass, runner).

An algorithm is registered once, with :func:`register_algorithm`, either as

* ``pymoo=``: a pymoo ``Algorithm`` class (or factory) called as ``pymoo(params, seed=seed)``
  and run by ``pymoo.optimize.minimize`` on a :class:`~.base.PymooSelection` (the
  meta-heuristics), or
* ``run=``: a function ``run(problem, params, *, seed, termination) -> Found`` (the exact MILP,
  the Optuna baseline).

``meta_heuristic=True`` marks the population meta-heuristics (:func:`meta_heuristic_names`).
The built-in algorithms are registered in :mod:`.algorithms`. Every lookup by name goes
through :func:`get_algorithm`, so an unknown name is a :class:`SelectionError` listing the
registered ones, wherever it is given (``select``, ``solve``, ``make_params``, the config).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from pymoo.optimize import minimize

from .base import PymooSelection
from .problem import SelectionError, SelectionProblem
from .termination import make_termination


class Found(NamedTuple):
    """What a runner returns: the masks it kept and their objectives (``solve`` filters
    them to the non-dominated front)."""

    masks: np.ndarray  # (F, N, L) bool
    F: np.ndarray  # (F, 2) minimisation objectives (-importance, variance)
    n_evals: int  # mask evaluations (MILP solves for ``exact``)
    complete: bool = True  # False only for an exact front cut short by its time limit


#: ``run(problem, params, *, seed, termination) -> Found``
Runner = Callable[..., Found]


@dataclass(frozen=True)
class AlgorithmEntry:
    """One registered algorithm: its name, its frozen parameter dataclass (whose fields are
    the valid ``params`` names), how to run it, and whether it is a population
    meta-heuristic."""

    name: str
    params: type
    run: Runner
    meta_heuristic: bool = False


_REGISTRY: dict[str, AlgorithmEntry] = {}


def register_algorithm(
    name: str,
    params: type,
    *,
    pymoo: Callable[..., Any] | None = None,
    run: Runner | None = None,
    meta_heuristic: bool = False,
) -> AlgorithmEntry:
    """Make ``name`` a selection algorithm everywhere (``select``, ``solve``, the config).

    Give exactly one of ``pymoo`` (a pymoo ``Algorithm`` class or factory, called as
    ``pymoo(params, seed=seed)``) and ``run`` (see :data:`Runner`). ``params`` is the
    algorithm's parameter dataclass (its defaults must be valid). A name is registered once;
    :func:`unregister_algorithm` removes it.
    """
    if not isinstance(name, str) or not name:
        raise SelectionError(f"an algorithm name must be a non-empty string, got {name!r}")
    if name in _REGISTRY:
        raise SelectionError(f"selection algorithm {name!r} is already registered")
    if not (isinstance(params, type) and dataclasses.is_dataclass(params)):
        raise SelectionError(f"params of {name!r} must be a dataclass, got {params!r}")
    if (pymoo is None) == (run is None):
        raise SelectionError(f"register {name!r} with exactly one of pymoo= or run=")
    if pymoo is not None:
        run = functools.partial(_build_and_run_pymoo, pymoo)
    entry = AlgorithmEntry(name, params, run, bool(meta_heuristic))
    _REGISTRY[name] = entry
    return entry


def unregister_algorithm(name: str) -> None:
    """Remove a registered algorithm (e.g. a test's own)."""
    get_algorithm(name)
    del _REGISTRY[name]


def algorithm_names() -> tuple[str, ...]:
    """Every registered algorithm, in registration order."""
    return tuple(_REGISTRY)


def meta_heuristic_names() -> tuple[str, ...]:
    """The registered population meta-heuristics, in registration order."""
    return tuple(name for name, entry in _REGISTRY.items() if entry.meta_heuristic)


def _did_you_mean(name: object, valid: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest valid name, or an empty string."""
    text = str(name)
    close = difflib.get_close_matches(text, valid, n=1, cutoff=0.5)
    if not close:
        close = [v for v in valid if v.startswith(text) or text.startswith(v)][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


def get_algorithm(name: str) -> AlgorithmEntry:
    """The registered algorithm ``name``; an unknown name raises :class:`SelectionError`
    listing the registered ones."""
    entry = _REGISTRY.get(name) if isinstance(name, str) else None
    if entry is None:
        names = algorithm_names()
        raise SelectionError(
            f"unknown selection algorithm {name!r}{_did_you_mean(name, names)}; "
            f"valid: {list(names)}"
        )
    return entry


def params_class(algorithm: str) -> type:
    """The frozen parameter dataclass of an algorithm (fields = valid ``params`` names)."""
    return get_algorithm(algorithm).params


def make_params(algorithm: str, params: Any = None) -> Any:
    """Validate ``params`` (``None``, a mapping or the algorithm's dataclass) into the
    algorithm's frozen dataclass. Unknown names raise :class:`SelectionError` listing the
    valid ones."""
    cls = params_class(algorithm)
    if params is None:
        return cls()
    if isinstance(params, cls):
        return params
    if not isinstance(params, Mapping):
        raise SelectionError(
            f"params for {algorithm!r} must be a mapping or {cls.__name__}, "
            f"got {type(params).__name__}"
        )
    valid = [f.name for f in dataclasses.fields(cls)]
    for key in params:
        if key not in valid:
            hint = _did_you_mean(key, valid)
            raise SelectionError(
                f"unknown parameter {key!r} for algorithm {algorithm!r}{hint}; valid: {valid}"
            )
    try:
        return cls(**dict(params))
    except TypeError as exc:  # pragma: no cover - names are checked above
        raise SelectionError(f"bad params for {algorithm!r}: {exc}") from None


def run_pymoo(algorithm: Any, problem: SelectionProblem, *, seed: int, termination: Any) -> Found:
    """Run a pymoo ``Algorithm`` on ``problem`` with ``pymoo.optimize.minimize``; the result
    (``Result.X`` / ``Result.F``) is the algorithm's optimum, for ours the archive."""
    res = minimize(
        PymooSelection(problem),
        algorithm,
        make_termination(termination),
        seed=seed,
        copy_algorithm=False,
    )
    masks = np.asarray(res.X, dtype=bool).reshape((-1,) + problem.shape)
    F = np.asarray(res.F, dtype=np.float64).reshape(-1, 2)
    return Found(masks, F, int(algorithm.evaluator.n_eval))


def _build_and_run_pymoo(
    build: Callable[..., Any],
    problem: SelectionProblem,
    params: Any,
    *,
    seed: int,
    termination: Any,
) -> Found:
    return run_pymoo(build(params, seed=seed), problem, seed=seed, termination=termination)
