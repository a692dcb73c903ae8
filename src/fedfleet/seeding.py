"""Independent random streams derived from one run seed.

Seeding several consumers of randomness with the same seed makes their draws coincide
(the partitioner's first uniforms would be the round sampler's first uniforms). Each
consumer instead draws from ``SeedSequence([seed, tag, *more])`` with its own constant
``tag``; streams with different tags are statistically independent whatever the seed.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class EngineStream(IntEnum):
    """Tags of the engine's consumers; never reuse or renumber a value."""

    PARTITION = 101  # which training samples each client holds
    TEST_SUBSAMPLE = 102  # the evaluated share of the test set (data.test_fraction)
    ROUNDS = 103  # device availability, cohort selection and update times, round by round
    DROPOUT = 104  # on/off periods of each device (fleet.dropout), one sub-stream per device
    FLEET = 0xF1EE7  # device speeds and bandwidths
    MULTIJOB = 105  # each job's own seed in a multi-job run (one sub-stream per job)
    SCHEDULER = 106  # a multi-job scheduling policy's own randomness (its network's initial weights)
    VALIDATION = 107  # the test samples the server holds out to judge its own changes (pruning)
    PRUNING = 108  # a pruning method's own randomness (HRank's image sample)


def stream(seed: int, tag: int, *more: int) -> np.random.Generator:
    """The generator of consumer ``tag`` (and optional sub-indices ``more``) under ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(tag), *(int(m) for m in more)]))


def derive_seed(seed: int, tag: int, *more: int) -> int:
    """A 32-bit integer seed of consumer ``tag`` under ``seed`` (for torch generators and estimators)."""
    entropy = [int(seed), int(tag), *(int(m) for m in more)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])
