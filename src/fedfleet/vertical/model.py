"""The split network: one bottom model per party, an interaction layer and a top model.

Party 0 is the active party (it holds the labels); parties 1.. are passive. Only the
bottom models see raw features; the interaction layer and the top model live with the
active party and see the passive parties only through their embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from fedfleet.vertical.lipschitz import MaxMin, SpectralLinear, TopModel, spectral_norm


def bottom_model(in_features: int, hidden: int, embedding_dim: int) -> nn.Module:
    """A party's bottom model: (batch, in_features) -> ReLU MLP -> (batch, embedding_dim)."""
    return nn.Sequential(
        nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, embedding_dim)
    )


class InteractionLayer(nn.Module):
    """Combines the active embedding with the passive ones: ``act(A z_a + P [z_1..z_k] + b)``.

    Parameters
    ----------
    active_dim : int
        Size of the active party's embedding.
    passive_dims : sequence of int
        Sizes of the passive parties' embeddings (concatenated before ``P``).
    out_features : int
        Output size (even when ``constrained``, for MaxMin).
    constrained : bool
        If True, ``P`` is spectrally normalised (norm 1) and the activation is MaxMin, so
        the map from the passive embeddings to the output is 1-Lipschitz. If False, ``P``
        is a plain linear map and the activation is ReLU.
    """

    def __init__(
        self, active_dim: int, passive_dims: Sequence[int], out_features: int, constrained: bool
    ) -> None:
        super().__init__()
        self.active = nn.Linear(active_dim, out_features)
        passive_total = sum(passive_dims)
        self.passive_dims = tuple(passive_dims)
        self.passive = (
            SpectralLinear(passive_total, out_features, bias=False)
            if constrained
            else nn.Linear(passive_total, out_features, bias=False)
        )
        self.activation: nn.Module = MaxMin() if constrained else nn.ReLU()

    def forward(self, z_active: torch.Tensor, z_passive: Sequence[torch.Tensor]) -> torch.Tensor:
        # z_active: (batch, active_dim); z_passive[k]: (batch, passive_dims[k])
        mixed = self.active(z_active) + self.passive(torch.cat(list(z_passive), dim=1))
        out: torch.Tensor = self.activation(mixed)
        return out

    def passive_lipschitz_bound(self) -> float:
        """Certified Lipschitz constant of the output in the (joint) passive embedding."""
        return spectral_norm(self.passive)

    def party_lipschitz_bounds(self) -> list[float]:
        """Certified Lipschitz constant of the output in each passive party's embedding alone (the
        others fixed): the spectral norm of that party's block of columns of ``P``, at most the joint one."""
        with torch.no_grad():
            blocks = torch.split(self.passive.weight.double(), list(self.passive_dims), dim=1)
            return [float(torch.linalg.matrix_norm(block, ord=2)) for block in blocks]


def clip_norm(z: torch.Tensor, limit: float) -> torch.Tensor:
    """Rows of ``z`` (batch, dim) scaled down to L2 norm at most ``limit``; shorter rows unchanged."""
    return z * (limit / z.norm(dim=1, keepdim=True).clamp_min(limit))


class SplitModel(nn.Module):
    """All parties' sub-models in one module (the unsplit view used for parity and attacks).

    Parameters
    ----------
    feature_dims : sequence of int
        Number of input features of each party, active party first.
    num_classes : int
        Number of classes.
    embedding_dim, bottom_hidden : int
        Bottom-model output size and hidden width (same for every party).
    interaction_dim, top_hidden, top_depth : int
        Interaction output size, top-model hidden width and number of hidden layers.
    lipschitz : float or None
        The top model's Lipschitz bound ``L``; None builds the unconstrained baseline
        (plain interaction path and top of the same sizes).
    embedding_clip : float or None
        The active party scales every received passive embedding down to at most this L2
        norm before using it (a projection, so 1-Lipschitz: the certified bound still holds,
        and a passive party can move the logits by at most ``bound * 2 * embedding_clip``).
    """

    def __init__(
        self,
        feature_dims: Sequence[int],
        num_classes: int,
        embedding_dim: int = 16,
        bottom_hidden: int = 64,
        interaction_dim: int = 32,
        top_hidden: int = 32,
        top_depth: int = 1,
        lipschitz: float | None = 1.0,
        embedding_clip: float | None = None,
    ) -> None:
        super().__init__()
        if len(feature_dims) < 2:
            raise ValueError("a split model needs an active and at least one passive party")
        self.feature_dims = tuple(feature_dims)
        self.bottoms = nn.ModuleList(
            bottom_model(dim, bottom_hidden, embedding_dim) for dim in feature_dims
        )
        passive_dims = [embedding_dim] * (len(feature_dims) - 1)
        self.interaction = InteractionLayer(
            embedding_dim, passive_dims, interaction_dim, constrained=lipschitz is not None
        )
        self.top = TopModel(interaction_dim, top_hidden, top_depth, num_classes, lipschitz)
        self.embedding_clip = embedding_clip

    def embed(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Every party's embedding, active first: list of (batch, embedding_dim)."""
        return [bottom(x) for bottom, x in zip(self.bottoms, xs, strict=True)]

    def head(self, z_active: torch.Tensor, z_passive: Sequence[torch.Tensor]) -> torch.Tensor:
        """The active party's part: embeddings -> (clip passive norms) -> interaction -> top -> logits."""
        if self.embedding_clip is not None:
            z_passive = [clip_norm(z, self.embedding_clip) for z in z_passive]
        logits: torch.Tensor = self.top(self.interaction(z_active, z_passive))
        return logits

    def forward(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        z_active, *z_passive = self.embed(xs)
        return self.head(z_active, z_passive)

    def forward_concatenated(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from all parties' features concatenated column-wise, in party order."""
        return self(torch.split(x, list(self.feature_dims), dim=1))

    def passive_lipschitz_bound(self) -> float:
        """Certified Lipschitz constant of logits in the passive embeddings (active fixed).

        The product of the interaction's passive-path bound and the top model's bound; it
        covers all passive embeddings jointly, hence each one alone.
        """
        return self.interaction.passive_lipschitz_bound() * self.top.lipschitz_bound()

    def passive_pair_bounds(self) -> torch.Tensor:
        """(classes, classes) certified Lipschitz constants of each logit difference in the passive embeddings."""
        return self.interaction.passive_lipschitz_bound() * self.top.pair_lipschitz_bounds()

    def party_pair_bounds(self, party: int) -> torch.Tensor:
        """(classes, classes) certified Lipschitz constants of each logit difference in passive party
        ``party``'s embedding alone (1-based, as ``robustness.attacked_party``); at most :meth:`passive_pair_bounds`."""
        return self.interaction.party_lipschitz_bounds()[party - 1] * self.top.pair_lipschitz_bounds()


def build_split_model(feature_dims: Sequence[int], num_classes: int, seed: int, **sizes: Any) -> SplitModel:
    """A :class:`SplitModel` initialised from ``seed`` without touching the global RNG.

    Every party builds it the same way and keeps its own part, so all parts start as in one process.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SplitModel(feature_dims, num_classes, **sizes)
