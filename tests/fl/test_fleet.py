"""The fleet generator, the time model and the virtual clock."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from fedfleet.config import FleetConfig
from fedfleet.errors import ConfigError
from fedfleet.fl.fleet import BYTES_PER_PARAM, DeviceProfile, TimeModel, VirtualClock, make_fleet


def test_heterogeneous_speeds_span_at_least_ten_fold():
    fleet = make_fleet(FleetConfig(profile="heterogeneous", speed_spread=20.0), 500, seed=0)
    speeds = np.array([d.speed for d in fleet])
    assert speeds.max() / speeds.min() >= 10
    assert speeds.max() / speeds.min() <= 20
    assert np.median(speeds) == pytest.approx(200.0, rel=0.15)  # centred on base_speed


def test_uniform_fleet_is_identical_devices():
    fleet = make_fleet(FleetConfig(profile="uniform", base_speed=50.0, bandwidth_mbps=8.0), 5, seed=3)
    assert {(d.speed, d.uplink_mbps, d.downlink_mbps) for d in fleet} == {(50.0, 8.0, 40.0)}


def test_fleet_is_deterministic_by_seed():
    config = FleetConfig()
    assert make_fleet(config, 20, seed=1) == make_fleet(config, 20, seed=1)
    assert make_fleet(config, 20, seed=1) != make_fleet(config, 20, seed=2)


def test_time_without_fluctuation_is_download_plus_compute_plus_upload():
    device = DeviceProfile(0, speed=100.0, uplink_mbps=2.0, downlink_mbps=10.0, availability=1.0)
    num_params = 250_000  # 1 MB = 8 megabits on the wire
    megabits = num_params * BYTES_PER_PARAM * 8 / 1e6
    seconds = TimeModel(fluctuation=0.0).update_time(device, 300, 2, num_params, np.random.default_rng(0))
    assert seconds == pytest.approx(megabits / 10.0 + 300 * 2 / 100.0 + megabits / 2.0)


@given(st.floats(0.05, 1.0), st.integers(0, 2**32 - 1))
def test_compute_scale_scales_compute_alone(scale, seed):
    device = DeviceProfile(0, speed=100.0, uplink_mbps=2.0, downlink_mbps=10.0, availability=1.0)
    full = TimeModel(0.3).phases(device, 300, 2, 5000, np.random.default_rng(seed))
    scaled = TimeModel(0.3).phases(device, 300, 2, 5000, np.random.default_rng(seed), compute_scale=scale)
    assert scaled[0] == full[0] and scaled[2] == full[2]
    assert scaled[1] == pytest.approx(full[1] * scale)


@given(st.floats(0.01, 2.0), st.integers(0, 2**32 - 1))
def test_fluctuation_only_slows_compute_down(fluctuation, seed):
    device = DeviceProfile(0, speed=100.0, uplink_mbps=2.0, downlink_mbps=10.0, availability=1.0)
    floor = TimeModel(0.0).update_time(device, 100, 1, 1000, np.random.default_rng(seed))
    stretched = TimeModel(fluctuation).update_time(device, 100, 1, 1000, np.random.default_rng(seed))
    assert stretched >= floor


def test_mean_slowdown_is_one_plus_fluctuation():
    device = DeviceProfile(0, speed=1.0, uplink_mbps=1e9, downlink_mbps=1e9, availability=1.0)
    rng = np.random.default_rng(0)
    times = [TimeModel(0.5).update_time(device, 1, 1, 1, rng) for _ in range(20_000)]
    assert np.mean(times) == pytest.approx(1.5, rel=0.02)
    assert min(times) >= 1.0


def test_virtual_clock_never_goes_back():
    clock = VirtualClock()
    clock.advance_to(3.0)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance_to(2.0)
    assert clock.now == 3.0


def test_fluctuation_never_stretches_communication():
    device = DeviceProfile(0, speed=100.0, uplink_mbps=2.0, downlink_mbps=10.0, availability=1.0)
    rng = np.random.default_rng(0)
    communication_only = [TimeModel(3.0).update_time(device, 0, 1, 250_000, rng) for _ in range(5)]
    assert communication_only == pytest.approx([8 / 10.0 + 8 / 2.0] * 5)


def test_an_infinite_update_time_is_a_config_error():
    device = DeviceProfile(0, speed=5e-321, uplink_mbps=10.0, downlink_mbps=50.0, availability=1.0)
    with pytest.raises(ConfigError, match="device 0 would take infinitely long"):
        TimeModel(0.0).update_time(device, 100, 1, 1000, np.random.default_rng(0))


def test_virtual_time_overflow_is_a_config_error():
    clock = VirtualClock(1e308)
    with pytest.raises(ConfigError, match="virtual time overflows"):
        clock.advance_to(clock.now + 1e308)


def test_a_fleet_whose_times_would_be_infinite_is_refused():
    with pytest.raises(ValidationError, match="device times are infinite"):
        FleetConfig(base_speed=1e-320)
