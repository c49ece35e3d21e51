"""Figures logged with runs (matplotlib, no display)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def heatmap_png(
    matrix: np.ndarray,
    rows: list[str],
    cols: list[str],
    title: str,
    cmap: str = "Blues",
    xlabel: str | None = None,
) -> bytes:
    """A rows x cols heatmap (clients x units: a selection mask or a score matrix; units x
    rounds: how many clients trained each unit) as PNG bytes."""
    fig, ax = plt.subplots(figsize=(max(4, 0.35 * len(cols) + 2), max(2.5, 0.3 * len(rows) + 1)))
    im = ax.imshow(np.asarray(matrix, dtype=float), aspect="auto", cmap=cmap)
    ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    return _png(fig)


def side_by_side_png(panels: dict[str, np.ndarray], units: list[str], title: str) -> bytes:
    """One units x rounds panel per method (clients training each unit per round), one colour
    scale, methods side by side."""
    n = len(panels)
    vmax = max(float(np.max(m)) for m in panels.values()) or 1.0
    fig, axes = plt.subplots(
        1, n, figsize=(2.2 * n + 1.2, max(2.5, 0.22 * len(units) + 1.3)), squeeze=False
    )
    im = None
    for ax, (method, m) in zip(axes[0], panels.items(), strict=True):
        im = ax.imshow(m, aspect="auto", cmap="Blues", vmin=0, vmax=vmax)
        ax.set_title(method, fontsize=8)
        ax.set_xticks(range(m.shape[1]), [str(r + 1) for r in range(m.shape[1])], fontsize=6)
        ax.set_xlabel("round", fontsize=7)
        ax.set_yticks(range(len(units)), units if ax is axes[0][0] else [], fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.colorbar(im, ax=list(axes[0]), fraction=0.02, label="clients")
    return _png(fig)


def ranking_png(
    rows: list[tuple[str, float, float]],
    colours: dict[str, str],
    baseline: float | None,
    title: str,
) -> bytes:
    """Methods as horizontal bars, best on top: (method, score, spread) in percent, each in its
    method's colour, the question-only baseline as a dashed line."""
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(rows) + 1.5))
    names = [r[0] for r in rows]
    ax.barh(
        names,
        [r[1] for r in rows],
        xerr=[r[2] for r in rows],
        color=[colours.get(n, "#1f77b4") for n in names],
        capsize=3,
    )
    for i, (_, v, _) in enumerate(rows):
        ax.text(v, i, f" {v:.1f}", va="center", fontsize=8)
    if baseline is not None:
        ax.axvline(baseline * 100, color="k", ls="--", lw=1, label="question-only baseline")
        ax.legend(fontsize=7, loc="lower right")
    ax.invert_yaxis()
    ax.set_xlabel("score (%), mean of the last 3 rounds (± spread)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _png(fig)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
