"""Every consumer of randomness has its own stream of the run seed."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fedfleet.config import load_config
from fedfleet.fl import build_runner
from fedfleet.seeding import EngineStream, derive_seed, stream


@given(st.integers(0, 2**32 - 1))
def test_engine_streams_differ_for_every_seed(seed):
    firsts = {tag: tuple(stream(seed, tag).random(4)) for tag in EngineStream}
    assert len(set(firsts.values())) == len(EngineStream)
    assert len({derive_seed(seed, tag) for tag in EngineStream}) == len(EngineStream)


def test_streams_repeat_by_seed():
    np.testing.assert_array_equal(stream(7, EngineStream.ROUNDS).random(3), stream(7, EngineStream.ROUNDS).random(3))


def test_the_runner_does_not_reuse_the_plain_seed_stream(digits_config):
    runner = build_runner(load_config(digits_config))
    plain = np.random.default_rng(digits_config["seed"]).bit_generator.state
    assert runner.state.rng_state != plain
    assert runner.state.rng_state == stream(digits_config["seed"], EngineStream.ROUNDS).bit_generator.state
