"""Independent random streams for every consumer of randomness in :mod:`fedfleet.privacy`.

One job seed drives many consumers (the data split, the candidate mask keys, model
training, the attacker...). Seeding each of them with the job seed itself, or with
``seed + 1``, makes their draws coincide: the candidate keys and the attacker's keys
came out of the same ``default_rng(seed)`` stream, so the attacker held the victim's
key. Every consumer instead gets its own stream, ``SeedSequence([seed, TAG, *more])``,
with a distinct constant ``TAG`` per consumer; streams with different tags are
statistically independent, whatever the seed.
"""

from __future__ import annotations

from enum import IntEnum

from fedfleet.seeding import derive_seed, stream

__all__ = ["Stream", "derive_seed", "stream"]


class Stream(IntEnum):
    """One tag per consumer of randomness; never reuse or renumber a value."""

    DATA_SPLIT = 1  # public / training / validation / held-out subsets
    CANDIDATE_KEYS = 2  # seeds of the defender's candidate masks
    RANDOM_CHOICE = 3  # the random candidate the mask report compares against
    ATTACK_KEYS = 4  # seeds of the inverse attacker's own masks
    ATTACK_ASSIGNMENT = 5  # which attacker mask encrypts which public image
    ATTACK_NETWORK = 6  # the network attack's initial weights and batch order
    ORIGINAL_MODEL = 7  # the mask job's clear-image model
    ENCRYPTED_MODEL = 8  # the mask job's encrypted-image model(s)
    ENCRYPTED_ASSIGNMENT = 9  # which candidate mask encrypts which training image
    OCCLUSION_SAMPLE = 10  # the sample of placements kept above max_candidates
    RANDOM_PLACEMENT = 11  # the random-placement baseline of the occlusion job
    TARGET_MODEL = 12  # the occlusion job's target model (and, for a fair comparison, the retrained one)
    MODEL_INIT = 13  # inside train_classifier: initial weights
    BATCH_ORDER = 14  # inside train_classifier: mini-batch order
    KNOWN_PAIRS = 15  # which public images the known-plaintext attacker holds in the clear and encrypted
