"""Figures logged with runs (matplotlib, no display)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def heatmap_png(
    matrix: np.ndarray, rows: list[str], cols: list[str], title: str, cmap: str = "Blues"
) -> bytes:
    """A clients x units heatmap (a selection mask or a score matrix) as PNG bytes."""
    fig, ax = plt.subplots(figsize=(max(4, 0.35 * len(cols) + 2), max(2.5, 0.3 * len(rows) + 1)))
    im = ax.imshow(np.asarray(matrix, dtype=float), aspect="auto", cmap=cmap)
    ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
