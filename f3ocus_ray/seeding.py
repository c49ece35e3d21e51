"""Every random number of client c in round r comes from a seed derived from (seed, r, c)."""

from __future__ import annotations

import numpy as np

SERVER = 2**31 - 1  # the "client index" of the server's own draws (e.g. random selection)
EVAL_STREAM = 2**30  # client c's evaluation draws come from "client" EVAL_STREAM + c
SCORE_STREAM = 2**29  # and its scoring draws (which samples are scored) from SCORE_STREAM + c
PARTICIPANTS = 2**31 - 2  # the server's draw of the round's training participants
EVAL_SAMPLE = 2**31 - 3  # and of the clients it evaluates (when not all)


def derive_seed(seed: int, round_idx: int, client_idx: int) -> int:
    return int(np.random.SeedSequence([seed, round_idx, client_idx]).generate_state(1)[0])


def derive_rng(seed: int, round_idx: int, client_idx: int = SERVER) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, round_idx, client_idx))


def derive_eval_seed(seed: int, round_idx: int, client_idx: int) -> int:
    """Evaluation draws random numbers too (ViLT shuffles its image patches)."""
    return derive_seed(seed, round_idx, EVAL_STREAM + client_idx)


def derive_score_seed(seed: int, round_idx: int, client_idx: int) -> int:
    return derive_seed(seed, round_idx, SCORE_STREAM + client_idx)


def sample_clients(seed: int, round_idx: int, n_clients: int, k: int, stream: int) -> np.ndarray:
    """k of n_clients client indices, sorted, drawn from (seed, round, stream) without
    replacement: the same on any executor and worker count, and after a resume. k == n_clients
    is every client, with no draw (a run with every client sees no change)."""
    if not 1 <= k <= n_clients:
        raise ValueError(f"cannot draw {k} of {n_clients} clients")
    if k == n_clients:
        return np.arange(n_clients)
    rng = np.random.default_rng(derive_seed(seed, round_idx, stream))
    return np.sort(rng.choice(n_clients, size=k, replace=False))


def derive_participants(seed: int, round_idx: int, n_clients: int, k: int) -> np.ndarray:
    """The clients that train in round `round_idx` (partial participation)."""
    return sample_clients(seed, round_idx, n_clients, k, PARTICIPANTS)


def derive_eval_clients(seed: int, round_idx: int, n_clients: int, k: int) -> np.ndarray:
    """The clients evaluated after round `round_idx` (a sample, when not all)."""
    return sample_clients(seed, round_idx, n_clients, k, EVAL_SAMPLE)
