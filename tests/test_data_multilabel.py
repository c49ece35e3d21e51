"""Multi-label chest X-rays: the drawn findings are the labels; Dirichlet label shift."""

import numpy as np
import pytest

from f3ocus_ray.data import (
    FINDINGS,
    DataError,
    generate_multilabel,
    label_shift,
    load_dataset,
    synthesize,
)
from f3ocus_ray.data.synthetic.multilabel import (
    NO_FINDING,
    client_label_distributions,
    render_chest,
)


def _label_matrices(alpha: float, seed: int) -> list[np.ndarray]:
    per_client: dict[str, list] = {}
    for s in generate_multilabel(
        seed=seed, n_clients=6, alpha=alpha, samples_per_client=120, image_size=8
    ):
        per_client.setdefault(s.client, []).append([f in s.labels for f in FINDINGS])
    return [np.array(v, dtype=np.float32) for v in per_client.values()]


def test_fifteen_findings_including_no_finding():
    assert len(FINDINGS) == 15 and FINDINGS[-1] == NO_FINDING
    assert {"Atelectasis", "Cardiomegaly", "Pleural thickening", "Pneumothorax"} <= set(FINDINGS)


def test_client_distributions_are_dirichlet_draws():
    p = client_label_distributions(4, 0.5, seed=0)
    assert p.shape == (4, 15)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_array_equal(p, client_label_distributions(4, 0.5, seed=0))
    assert not np.allclose(p, client_label_distributions(4, 0.5, seed=1))
    with pytest.raises(DataError, match="alpha"):
        client_label_distributions(4, 0.0, seed=0)
    with pytest.raises(DataError, match="n_clients"):
        client_label_distributions(0, 1.0, seed=0)


def test_smaller_alpha_gives_more_heterogeneous_clients():
    shift = {
        alpha: np.mean([label_shift(_label_matrices(alpha, seed)) for seed in (0, 1)])
        for alpha in (0.1, 1.0, 100.0)
    }
    assert shift[0.1] > shift[1.0] > shift[100.0]
    assert shift[0.1] > 0.6
    assert shift[100.0] < 0.2


def test_label_shift_measure():
    a = np.array([[1, 0], [1, 0]], dtype=np.float32)
    b = np.array([[0, 1], [0, 1]], dtype=np.float32)
    assert label_shift([a, a]) == 0.0
    assert label_shift([a, b]) == 1.0
    assert label_shift([a, np.vstack([a, b])]) == pytest.approx(0.5)


def test_labels_are_consistent():
    for s in generate_multilabel(
        seed=3, n_clients=3, alpha=1.0, samples_per_client=60, image_size=8
    ):
        assert 1 <= len(s.labels) <= 2
        assert len(set(s.labels)) == len(s.labels)
        assert NO_FINDING not in s.labels or s.labels == (NO_FINDING,)


def test_every_finding_is_drawn_visibly():
    """Mean images with one finding differ from no-finding images far more than noise does."""

    def mean_image(findings, seeds):
        imgs = [
            render_chest(findings, np.random.default_rng(s), 32).astype(np.float32) for s in seeds
        ]
        return np.mean(imgs, axis=0)[..., 0].reshape(8, 4, 8, 4).mean((1, 3))

    base = mean_image([], range(12))
    noise = np.abs(mean_image([], range(100, 112)) - base).max()
    assert noise < 8
    for f in FINDINGS[:-1]:
        effect = np.abs(mean_image([f], range(12)) - base).max()
        assert effect > 3 * noise and effect > 15, (f, effect, noise)


def test_multilabel_set_round_trip(tmp_path):
    path = synthesize(
        tmp_path / "ml",
        task="multilabel",
        seed=0,
        n_clients=3,
        alpha=0.3,
        samples_per_client=30,
        image_size=16,
    )
    ds = load_dataset(path, 16)
    assert ds.task == "multilabel"
    assert ds.clients == ["client_0", "client_1", "client_2"]
    assert set(ds.labels) <= set(FINDINGS)
    expected = [
        s
        for s in generate_multilabel(
            seed=0, n_clients=3, alpha=0.3, samples_per_client=30, image_size=16
        )
    ]
    for client in ds.clients:
        assert ds.sizes()[client] == {"train": 24, "test": 6}
        part = ds.client_split(client, "test")
        want = [s for s in expected if s.client == client and s.split == "test"]
        for row, img, s in zip(part.label_matrix, part.images, want, strict=True):
            assert {ds.labels[i] for i in np.flatnonzero(row)} == set(s.labels)
            np.testing.assert_array_equal(img, s.image)
