"""Non-IID-degree weighted aggregation (FedJS / FedDH): weights, degrees, the adaptive rule, rejection, resume."""

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

from fedfleet.config import StrategyConfig, load_config
from fedfleet.data.partition.stats import js_divergence, noniid_degree
from fedfleet.errors import ConfigError
from fedfleet.fl import build_federated_data, resume_simulation, run_simulation
from fedfleet.fl.checkpoint import load_checkpoint
from fedfleet.fl.device_degree import DEGREE_METRIC, local_degree
from fedfleet.fl.messages import ClientUpdate, LocalTrainingPlan, TrainTask
from fedfleet.fl.strategies import FedAvg, FederationInfo, NonIIDWeighted, build_strategy, sample_weights
from fedfleet.fl.strategies.noniid import noniid_weights, weight_hypergradients
from tests.fl.test_runs import StopAfter, without_wall_time

EPS = 1e-3


def update(client_id, delta, degree, num_samples=10):
    metrics = {} if degree is None else {DEGREE_METRIC: degree}
    return ClientUpdate(client_id, torch.as_tensor(delta, dtype=torch.float32), num_samples, 1, 0, metrics)


def strategy(adaptive, num_clients=2, **kwargs):
    s = NonIIDWeighted(adaptive=adaptive, epsilon=EPS, **kwargs)
    s.setup(FederationInfo(np.full(num_clients, 10), np.ones((num_clients, 3), dtype=np.int64)))
    return s


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10_000), st.floats(0, 1), st.floats(0, 100), st.floats(0, 100)),
                min_size=1, max_size=20))
def test_weights_are_nonnegative_and_sum_to_one(rows):
    n, d, lam, b = (np.array(column, dtype=np.float64) for column in zip(*rows, strict=True))
    weights = noniid_weights(n, d, lam, b, EPS)
    assert (weights >= 0).all() and np.isfinite(weights).all()
    assert weights.sum() == pytest.approx(1.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=20), st.floats(0, 1))
def test_equal_degrees_are_fedavg_exactly(counts, degree):
    updates = [update(i, [float(i), -1.0], degree, n) for i, n in enumerate(counts)]
    s = strategy(adaptive=False, num_clients=len(counts))
    weights = noniid_weights(np.array(counts, dtype=np.float64), np.full(len(counts), degree),
                             s.lam[: len(counts)], s.b[: len(counts)], EPS)
    assert (weights == sample_weights(updates)).all()
    params = torch.tensor([0.5, 2.0])
    assert torch.equal(s.aggregate(params, updates), FedAvg().aggregate(params, updates))


def test_an_iid_device_gets_the_epsilon_floor_not_a_division_by_zero():
    weights = noniid_weights(np.array([10.0, 10.0]), np.array([0.0, 0.5]), np.ones(2), np.zeros(2), EPS)
    assert weights == pytest.approx([1 / EPS / (1 / EPS + 1 / 0.5), 1 / 0.5 / (1 / EPS + 1 / 0.5)])
    static = strategy(adaptive=False)
    out = static.aggregate(torch.zeros(1), [update(0, [1.0], 0.0), update(1, [-1.0], 0.5)])
    assert math.isfinite(float(out)) and float(out) == pytest.approx(0.5 / (0.5 + 2 * EPS), rel=1e-6)  # dens ε, 0.5 + ε


def test_js_divergence_matches_hand_computation_and_scipy():
    p, q = np.array([1.0, 0.0]), np.array([0.5, 0.5])
    # m = (0.75, 0.25): KL(p||m) = log2(4/3); KL(q||m) = 0.5 log2(2/3) + 0.5 log2(2)
    by_hand = 0.5 * math.log2(4 / 3) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5)
    assert float(js_divergence(p, q)) == pytest.approx(by_hand, abs=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.dirichlet(np.full(10, 0.3)), rng.dirichlet(np.full(10, 2.0))
        assert float(js_divergence(a, b)) == pytest.approx(jensenshannon(a, b, base=2) ** 2, abs=1e-12)
    assert float(js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0]))) == pytest.approx(1.0)


def test_the_device_degree_is_the_one_data_info_reports():
    histograms = np.array([[5, 0, 1], [1, 4, 4], [0, 0, 3]])
    reference = tuple(histograms.sum(axis=0) / histograms.sum())
    labels = [torch.repeat_interleave(torch.arange(3), torch.as_tensor(row)) for row in histograms]
    on_device = [local_degree(y, reference) for y in labels]
    assert on_device == pytest.approx(noniid_degree(histograms).tolist(), abs=1e-15)


def test_closed_form_hypergradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    n, d = 4, 6
    counts, degrees = rng.integers(5, 50, n).astype(float), rng.uniform(0, 1, n)
    lam, b = rng.uniform(0.5, 2, n), rng.uniform(0.01, 0.5, n)
    deltas = torch.as_tensor(rng.normal(size=(n, d)), dtype=torch.float64)

    def moved(lam_, b_):  # w - w_0 = Σ p_k Δ_k
        return torch.as_tensor(noniid_weights(counts, degrees, lam_, b_, EPS)) @ deltas

    weights = noniid_weights(counts, degrees, lam, b, EPS)
    mean = moved(lam, b)
    grad_lambda, grad_b = weight_hypergradients(weights, degrees, lam * degrees + b, deltas, mean)
    h = 1e-6
    for k in range(n):
        step = np.eye(n)[k] * h
        numeric_lambda = float((moved(lam + step, b) - moved(lam - step, b)) @ mean) / (2 * h)
        numeric_b = float((moved(lam, b + step) - moved(lam, b - step)) @ mean) / (2 * h)
        assert grad_lambda[k] == pytest.approx(numeric_lambda, rel=1e-5, abs=1e-9)
        assert grad_b[k] == pytest.approx(numeric_b, rel=1e-5, abs=1e-9)


def test_adaptive_step_favours_the_device_that_agrees_with_the_cohort():
    # Device 0 (D = 0.2) pushes +2, device 1 (D = 0.5) pushes -1: the weighted mean points with device 0,
    # so ⟨∂w/∂λ_0, Δ̄⟩ < 0 < ⟨∂w/∂λ_1, Δ̄⟩: λ_0 and b_0 fall, λ_1 and b_1 rise, by the full step sizes.
    s = strategy(adaptive=True, lr_lambda=0.1, lr_b=0.01, decay=0.5)
    updates = [update(0, [2.0, 0.0], 0.2), update(1, [-1.0, 0.0], 0.5)]
    weights = noniid_weights(np.array([10.0, 10.0]), np.array([0.2, 0.5]), np.ones(2), np.full(2, EPS), EPS)
    mean = torch.tensor([2.0 * weights[0] - weights[1], 0.0], dtype=torch.float64)
    grad_lambda, _ = weight_hypergradients(weights, np.array([0.2, 0.5]), np.array([0.2, 0.5]) + EPS,
                                           torch.tensor([[2.0, 0.0], [-1.0, 0.0]], dtype=torch.float64), mean)
    assert grad_lambda[0] < 0 < grad_lambda[1]
    first = s.aggregate(torch.zeros(2), updates)
    torch.testing.assert_close(first, mean.float())  # this round still aggregates with λ = 1, b = ε
    assert s.lam == pytest.approx([0.9, 1.1]) and s.b == pytest.approx([EPS, EPS + 0.01])  # b_0 floored at ε
    s.aggregate(torch.zeros(2), updates)  # the second step of each device is decay x smaller
    assert s.lam == pytest.approx([0.85, 1.15])
    assert s.times_updated.tolist() == [2, 2]


def test_static_strategy_learns_nothing():
    s = strategy(adaptive=False)
    s.aggregate(torch.zeros(2), [update(0, [2.0, 0.0], 0.2), update(1, [-1.0, 0.0], 0.5)])
    assert s.lam.tolist() == [1.0, 1.0] and s.b.tolist() == [EPS, EPS]


@pytest.mark.parametrize(("degree", "reason"), [
    (None, "no Non-IID degree"), (math.nan, "not a number in [0, 1]"), (1.5, "not a number in [0, 1]"),
    (-0.1, "not a number in [0, 1]"),
])
def test_a_bad_degree_is_rejected_and_recorded(digits_config, tmp_path, degree, reason):
    class Liar:
        def __call__(self, task: TrainTask, upd: ClientUpdate) -> ClientUpdate:
            if upd.client_id != 0:
                return upd
            metrics = {k: v for k, v in upd.metrics.items() if k != DEGREE_METRIC}
            return ClientUpdate(upd.client_id, upd.delta, upd.num_samples, upd.local_steps, upd.base_version,
                                metrics if degree is None else {**metrics, DEGREE_METRIC: degree})

    digits_config["strategy"] = {"name": "noniid"}
    digits_config["train"].update(clients_per_round=8)  # every device, device 0 included, every round
    result = run_simulation(load_config(digits_config), out_dir=tmp_path, client_hooks=[Liar()])
    lines = [json.loads(x) for x in (tmp_path / "rejections.jsonl").read_text().splitlines()]
    assert [r["client_id"] for r in lines] == [0] * 4 and all(reason in r["reason"] for r in lines)
    assert result.summary["updates_rejected"] == 4


def test_devices_compute_their_degree_from_the_broadcast_distribution():
    s = NonIIDWeighted(reference="counts")
    s.setup(FederationInfo(np.array([4, 6]), np.array([[4, 0], [2, 4]])))
    assert s.configure_train(LocalTrainingPlan(), 1).label_reference == pytest.approx((0.6, 0.4))
    uniform = NonIIDWeighted(reference="uniform")
    uniform.setup(FederationInfo(np.array([4, 6]), np.array([[4, 0], [2, 4]])))
    assert uniform.configure_train(LocalTrainingPlan(), 1).label_reference == (0.5, 0.5)


def test_strategy_keys_belong_to_noniid_only():
    built = build_strategy(StrategyConfig(name="noniid", adaptive=False, epsilon=0.01))
    assert isinstance(built, NonIIDWeighted) and not built.adaptive and built.epsilon == 0.01
    assert StrategyConfig(name="noniid").lr_lambda == 0.1 and StrategyConfig(name="noniid").decay == 0.99
    with pytest.raises(ConfigError, match=r"strategy\.lr_b is not a key of strategy 'fedavg'"):
        StrategyConfig(name="fedavg", lr_b=0.1)


def test_resume_equals_uninterrupted_with_learned_weights(digits_config, tmp_path):
    digits_config["strategy"] = {"name": "noniid"}
    digits_config["train"]["rounds"] = 6
    config = load_config(digits_config)
    full = run_simulation(config, out_dir=tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run_simulation(config, out_dir=tmp_path / "cut", callbacks=[StopAfter(3)])
    saved = load_checkpoint(tmp_path / "cut" / "checkpoint").strategy_state
    assert saved["times_updated"].sum() == 2 * 4 and not (saved["lambda"] == 1.0).all()
    resumed = resume_simulation(tmp_path / "cut")
    assert without_wall_time(resumed.history) == without_wall_time(full.history)
    for ours, theirs in zip(resumed.model.parameters(), full.model.parameters(), strict=True):
        assert torch.equal(ours, theirs)


def test_noniid_is_synchronous_and_takes_no_async_keys(digits_config):
    with pytest.raises(ConfigError, match="strategy 'noniid' is synchronous"):
        load_config({**digits_config, "train": {**digits_config["train"], "mode": "async"},
                     "strategy": {"name": "noniid"}})
    with pytest.raises(ConfigError, match=r"strategy\.alpha is not a key of strategy 'noniid'"):
        StrategyConfig(name="noniid", alpha=0.5)


def test_in_a_run_devices_report_the_degree_data_info_shows(digits_config):
    class Seen:
        def __init__(self) -> None:
            self.degrees: dict[int, float] = {}

        def __call__(self, task: TrainTask, upd: ClientUpdate) -> ClientUpdate:
            self.degrees[upd.client_id] = upd.metrics[DEGREE_METRIC]
            return upd

    digits_config["strategy"] = {"name": "noniid", "adaptive": False}
    config = load_config(digits_config)
    seen = Seen()
    result = run_simulation(config, client_hooks=[seen])
    expected = noniid_degree(build_federated_data(config.data, config.seed).label_histograms())
    assert seen.degrees and all(d == pytest.approx(expected[c], abs=1e-12) for c, d in seen.degrees.items())
    assert result.summary["updates_rejected"] == 0
