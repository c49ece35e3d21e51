"""The Pareto-front plot (front, pick, client-only top-k) as PNG bytes.

Uses matplotlib's Agg canvas directly (no pyplot, no global backend change), so it is safe in
a headless driver; the engine can log the bytes to MLflow (``mlflow.log_image`` / artifact).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from .api import reference_objectives


def pareto_plot_png(
    result: Any,
    path: str | Path | None = None,
    *,
    reference: Any = None,
    title: str | None = None,
    dpi: int = 100,
) -> bytes:
    """Draw a :class:`~.api.SelectionResult`: variance (x) against importance (y).

    Args:
        result: the selection result (front, pick and client-only top-k).
        path: if given, the PNG is also written there.
        reference: an optional reference front to draw underneath (a (F, 2) array of
            ``(-importance, variance)``, a ``SelectionResult`` or a ``Front``).
        title: the plot title (default: algorithm, pick rule, hypervolume).
        dpi: resolution.

    Returns:
        The PNG file's bytes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.2), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if reference is not None:
        ref = reference_objectives(reference)
        order = np.argsort(ref[:, 1])
        ax.plot(
            ref[order, 1],
            -ref[order, 0],
            "-",
            color="0.7",
            lw=3,
            label="reference front",
            zorder=1,
        )
    order = np.argsort(result.front_variance)
    ax.plot(
        result.front_variance[order],
        result.front_importance[order],
        "o-",
        ms=4,
        lw=1,
        color="tab:blue",
        label=f"front ({len(order)} points)",
        zorder=2,
    )
    ax.plot(
        [result.topk_variance],
        [result.topk_importance],
        "X",
        ms=11,
        color="tab:red",
        label="client-only top-k",
        zorder=3,
    )
    ax.plot(
        [result.variance],
        [result.importance],
        "*",
        ms=16,
        color="tab:orange",
        markeredgecolor="k",
        label=f"pick ({result.pick})",
        zorder=4,
    )
    ax.set_xlabel("variance of unit usage (minimise)")
    ax.set_ylabel("total importance (maximise)")
    if title is None:
        ratio = "" if result.hv_ratio is None else f", HV ratio {result.hv_ratio:.3f}"
        title = f"{result.algorithm}: {result.n_evals} evals, {result.seconds:.2f}s{ratio}"
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data
