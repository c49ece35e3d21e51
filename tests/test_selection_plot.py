"""The Pareto-front plot is a real PNG (bytes for MLflow, optionally a file)."""

import io

import numpy as np

from f3ocus_ray.selection import pareto_plot_png, select
from f3ocus_ray.selection.synthetic import paper_like_scores


def test_plot_returns_and_writes_png_bytes(tmp_path):
    from PIL import Image

    scores = paper_like_scores(0)
    exact = select(scores, 4, algorithm="exact")
    res = select(scores, 4, algorithm="sa", termination=("n_eval", 500), reference=exact)
    path = tmp_path / "front.png"
    data = pareto_plot_png(res, path, reference=exact, dpi=50)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.read_bytes() == data
    image = Image.open(io.BytesIO(data))
    assert image.size == (300, 210)  # 6 x 4.2 inches at 50 dpi
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    # the front (tab:blue), the pick (tab:orange) and client-only top-k (tab:red) are drawn
    for rgb in [(31, 119, 180), (255, 127, 14), (214, 39, 40)]:
        assert np.any(np.abs(pixels - rgb).sum(1) < 30), rgb
