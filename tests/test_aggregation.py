import numpy as np
import pytest

from f3ocus_ray.strategies.aggregation import masked_fedavg


def test_masked_fedavg_hand_computed():
    g = {
        "a": np.array([0.0, 0.0], dtype=np.float32),
        "b": np.array([10.0], dtype=np.float32),
        "c": np.array([5.0], dtype=np.float32),
    }
    updates = [
        ({"a": np.array([1.0, 2.0], dtype=np.float32), "b": np.array([4.0], dtype=np.float32)}, 1),
        ({"a": np.array([4.0, 8.0], dtype=np.float32)}, 3),
        ({"b": np.array([1.0], dtype=np.float32)}, 2),
    ]
    new = masked_fedavg(g, updates)
    # a: trained by clients 0 (n=1) and 1 (n=3): (1*[1,2] + 3*[4,8]) / 4
    np.testing.assert_allclose(new["a"], [13 / 4, 26 / 4])
    # b: trained by clients 0 (n=1) and 2 (n=2): (4 + 2*1) / 3
    np.testing.assert_allclose(new["b"], [2.0])
    # c: nobody trained it: unchanged, and the same object
    assert new["c"] is g["c"]
    assert new["a"].dtype == np.float32
    # the input is not modified
    assert g["a"].tolist() == [0.0, 0.0]


def test_masked_fedavg_refuses_bad_updates():
    g = {"a": np.zeros(1, dtype=np.float32)}
    with pytest.raises(KeyError, match="unknown tensor 'z'"):
        masked_fedavg(g, [({"z": np.zeros(1)}, 1)])
    with pytest.raises(ValueError, match="non-positive"):
        masked_fedavg(g, [({"a": np.zeros(1)}, 0)])
