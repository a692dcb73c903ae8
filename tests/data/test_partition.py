import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedfleet.data.partition import build_partitioner, label_histograms, noniid_degree
from fedfleet.data.partition.stats import js_divergence
from fedfleet.errors import ConfigError

NAMES = ["iid", "dirichlet", "shards", "quantity"]


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(NAMES),
    num_samples=st.integers(20, 400),
    num_clients=st.integers(1, 10),
    num_classes=st.integers(2, 10),
    seed=st.integers(0, 2**16),
)
def test_every_sample_assigned_exactly_once(name, num_samples, num_clients, num_classes, seed):
    labels = np.random.default_rng(seed).integers(0, num_classes, num_samples)
    parts = build_partitioner(name, num_clients, random_state=seed).fit(labels).client_indices_
    assert len(parts) == num_clients
    assert all(len(p) > 0 for p in parts)
    joined = np.concatenate(parts)
    np.testing.assert_array_equal(np.sort(joined), np.arange(num_samples))


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(["dirichlet", "quantity"]),
    skew=st.floats(1e-4, 1e8),  # data.alpha for dirichlet, data.quantity_sigma for quantity
    num_samples=st.integers(20, 400),
    num_clients=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
def test_extreme_skew_still_assigns_every_sample_once(name, skew, num_samples, num_clients, seed):
    labels = np.random.default_rng(seed).integers(0, 5, num_samples)
    parameter = {"alpha": skew} if name == "dirichlet" else {"quantity_sigma": skew}
    parts = build_partitioner(name, num_clients, random_state=seed, **parameter).fit(labels).client_indices_
    assert len(parts) == num_clients and all(len(p) > 0 for p in parts)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(num_samples))


def test_huge_quantity_sigma_keeps_the_sample_count():
    labels = np.random.default_rng(0).integers(0, 10, 1348)
    parts = build_partitioner("quantity", 20, random_state=0, quantity_sigma=1e6).fit(labels).client_indices_
    assert sum(len(p) for p in parts) == 1348  # was 1,374: NaN shares duplicated samples


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_partition(name):
    labels = np.random.default_rng(1).integers(0, 10, 500)
    a = build_partitioner(name, 7, random_state=3).fit(labels).client_indices_
    b = build_partitioner(name, 7, random_state=3).fit(labels).client_indices_
    c = build_partitioner(name, 7, random_state=4).fit(labels).client_indices_
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_shards_limit_classes_per_client():
    labels = np.repeat(np.arange(10), 100)
    parts = build_partitioner("shards", 20, shards_per_client=2).fit(labels).client_indices_
    assert max(len(np.unique(labels[p])) for p in parts) <= 2


def test_smaller_alpha_is_more_noniid():
    labels = np.random.default_rng(0).integers(0, 10, 5000)

    def mean_degree(alpha):
        parts = build_partitioner("dirichlet", 20, alpha=alpha).fit(labels).client_indices_
        return noniid_degree(label_histograms(labels, parts, 10)).mean()

    assert mean_degree(0.1) > mean_degree(1.0) > mean_degree(100.0)


def test_noniid_degree_known_values():
    histograms = np.array([[50, 50], [100, 0], [0, 100]])
    degree = noniid_degree(histograms)
    assert degree[0] == pytest.approx(0.0)
    # JSD(base 2) between [1, 0] and [0.5, 0.5]
    expected = 0.5 * (1 * np.log2(1 / 0.75)) + 0.5 * (0.5 * np.log2(0.5 / 0.75) + 0.5 * np.log2(0.5 / 0.25))
    assert degree[1] == pytest.approx(expected) and degree[2] == pytest.approx(expected)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 10), min_size=2, max_size=8), st.lists(st.floats(0, 10), min_size=2, max_size=8))
def test_jsd_bounded_and_symmetric(p, q):
    size = min(len(p), len(q))
    p, q = np.array(p[:size]) + 1e-3, np.array(q[:size]) + 1e-3
    p, q = p / p.sum(), q / q.sum()
    value = js_divergence(p, q)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(js_divergence(q, p), abs=1e-12)


def test_too_many_clients_is_a_config_error():
    with pytest.raises(ConfigError, match="num_clients"):
        build_partitioner("iid", 50).fit(np.zeros(10, dtype=int))
