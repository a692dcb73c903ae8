"""Vertical federated learning: parties holding different features of the same samples.

An active party (labels, a bottom model, an interaction layer and a top model) and one or
more passive parties (a bottom model each) align their samples by private set intersection, then
train a split network by exchanging embeddings and gradients over a byte-counting channel,
in one process or with one process per party over HTTP (``fedfleet.vertical.federation``).
A Lipschitz top model and a bounded passive path in the interaction layer certify how far
a passive party's embedding can move the logits.
"""

from fedfleet.vertical.alignment import Alignment, align_digests, align_ids, hash_align, salted_hashes
from fedfleet.vertical.attacks import Corruption
from fedfleet.vertical.channel import IdentityChannel, SerializingChannel, TensorSpec
from fedfleet.vertical.config import VerticalConfig, load_vertical_config
from fedfleet.vertical.data import load_vertical
from fedfleet.vertical.model import SplitModel
from fedfleet.vertical.protocol import Message, PassiveLink, PassiveService
from fedfleet.vertical.psi import psi_align, psi_overlap_sizes
from fedfleet.vertical.trainer import VerticalClassifier, fit_unsplit

__all__ = [
    "Alignment",
    "Corruption",
    "IdentityChannel",
    "Message",
    "PassiveLink",
    "PassiveService",
    "SerializingChannel",
    "SplitModel",
    "TensorSpec",
    "VerticalClassifier",
    "VerticalConfig",
    "align_digests",
    "align_ids",
    "fit_unsplit",
    "hash_align",
    "load_vertical",
    "load_vertical_config",
    "psi_align",
    "psi_overlap_sizes",
    "salted_hashes",
]
