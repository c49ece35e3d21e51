"""The driver's checkpoint: tensors and plain data only, loadable with `weights_only=True`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch


def save_checkpoint(path: Path, driver_state: dict[str, Any]) -> None:
    """Tensors and plain data only (loadable with weights_only=True); atomic replace."""
    payload = {
        "round": int(driver_state["round"]),
        "version": {k: int(v) for k, v in driver_state["version"].items()},
        "state": {k: torch.from_numpy(np.array(v)) for k, v in driver_state["state"].items()},
    }
    if driver_state.get("raw_scores") is not None:  # reused between scoring rounds
        payload["raw_scores"] = torch.from_numpy(np.array(driver_state["raw_scores"]))
    if driver_state.get("private"):  # per-client state that never travels (FedDAT's adapters)
        payload["private"] = {
            c: {k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}
            for c, tensors in driver_state["private"].items()
        }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    d = torch.load(path, weights_only=True)
    d["state"] = {k: v.numpy() for k, v in d["state"].items()}
    d["raw_scores"] = d["raw_scores"].numpy() if "raw_scores" in d else None
    d["private"] = {
        c: {k: v.numpy() for k, v in tensors.items()} for c, tensors in d.get("private", {}).items()
    }
    return d
