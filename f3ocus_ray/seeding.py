"""Every random number of client c in round r comes from a seed derived from (seed, r, c)."""

from __future__ import annotations

import numpy as np

SERVER = 2**31 - 1  # the "client index" of the server's own draws (e.g. random selection)
EVAL_STREAM = 2**30  # client c's evaluation draws come from "client" EVAL_STREAM + c
SCORE_STREAM = 2**29  # and its scoring draws (which samples are scored) from SCORE_STREAM + c


def derive_seed(seed: int, round_idx: int, client_idx: int) -> int:
    return int(np.random.SeedSequence([seed, round_idx, client_idx]).generate_state(1)[0])


def derive_rng(seed: int, round_idx: int, client_idx: int = SERVER) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, round_idx, client_idx))


def derive_eval_seed(seed: int, round_idx: int, client_idx: int) -> int:
    """Evaluation draws random numbers too (ViLT shuffles its image patches)."""
    return derive_seed(seed, round_idx, EVAL_STREAM + client_idx)


def derive_score_seed(seed: int, round_idx: int, client_idx: int) -> int:
    return derive_seed(seed, round_idx, SCORE_STREAM + client_idx)
