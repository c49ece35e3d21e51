"""When a search stops: the ``(kind, value)`` pairs every algorithm accepts, parsed once.

``("n_eval", X)`` (or ``"n_evals"``) stops after X mask evaluations, ``("n_gen", X)`` after X
generations, ``("time", s)`` after s wall seconds; ``None`` is :data:`DEFAULT_TERMINATION`.
:func:`termination_pair` validates a pair; :func:`make_termination` turns it into a pymoo
``Termination`` (for the algorithms run by ``pymoo.optimize.minimize``), and the Optuna
baseline turns the same pair into a trial count or a timeout.
"""

from __future__ import annotations

from typing import Any

from .problem import SelectionError

#: the termination used when none is given: 20,000 mask evaluations
DEFAULT_TERMINATION: tuple[str, int] = ("n_eval", 20_000)
TERMINATION_KINDS: tuple[str, ...] = ("n_eval", "n_evals", "n_gen", "time")


def termination_pair(termination: Any = None) -> tuple[str, int | float]:
    """The validated ``(kind, value)`` of ``termination`` (``None``: the default): an int
    count for ``n_eval`` / ``n_evals`` / ``n_gen``, float seconds for ``time``."""
    if termination is None:
        termination = DEFAULT_TERMINATION
    if (
        not isinstance(termination, tuple | list)
        or len(termination) != 2
        or termination[0] not in TERMINATION_KINDS
    ):
        raise SelectionError(
            f"termination must be a pymoo Termination or a pair (kind, value) with kind in "
            f"{list(TERMINATION_KINDS)}, got {termination!r}"
        )
    kind, value = termination
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise SelectionError(f"termination value must be a positive number, got {value!r}")
    return kind, float(value) if kind == "time" else int(value)


def make_termination(termination: Any = None):
    """A pymoo termination from ``None`` (the default), a pymoo ``Termination`` (returned as
    is) or a pair (see :func:`termination_pair`)."""
    from pymoo.core.termination import Termination
    from pymoo.termination import get_termination

    if isinstance(termination, Termination):
        return termination
    return get_termination(*termination_pair(termination))
