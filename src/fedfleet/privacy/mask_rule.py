"""The mask selection rule: caps on the original models' and the attack suite's figures, and its verdict.

A candidate qualifies when every figure the rule caps stays at or below its cap: the best
clear-image model's accuracy on its ciphertexts (``constrained``), the worst SSIM over the
ciphertext and every reconstruction, the best attacker classifier's accuracy and the highest
linkage rate over the linkage attack's views. When none
qualifies, the least bad is the one whose worst figure exceeds its cap by least.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from fedfleet.errors import ConfigError
from fedfleet.privacy.masks import MaskKey
from fedfleet.privacy.selection import SelectionError, pick_feasible


@dataclass(frozen=True)
class MaskRule:
    """How the target mask is chosen.

    Attributes
    ----------
    name : {"constrained", "gap"}
        ``constrained``: highest encrypted-model accuracy with original-model accuracy at
        most ``max_original_accuracy``; ``gap``: largest encrypted minus original accuracy.
    max_original_accuracy : float
        Ceiling on the best original model's accuracy on encrypted images (``constrained``).
    max_attack_ssim : float or None
        Ceiling (both rules) on the worst-case SSIM to the clear images over the ciphertext
        itself and every attack's reconstruction; None: no ceiling.
    max_attacker_accuracy : float or None
        Ceiling (both rules, absolute accuracy) on the best attacker classifier's accuracy;
        None: no ceiling.
    require_qualified : bool
        When no candidate qualifies: raise (True) or take the least bad one (False).
    max_linkage : float or None
        Ceiling (both rules) on the highest share of attacked images the linkage attack
        re-identifies among them, over its views; None: no ceiling.
    """

    name: Literal["constrained", "gap"] = "constrained"
    max_original_accuracy: float = 0.3
    max_attack_ssim: float | None = 0.5
    max_attacker_accuracy: float | None = 0.3
    require_qualified: bool = False
    max_linkage: float | None = 0.05


@dataclass(frozen=True)
class MaskScore:
    """One candidate's results on the validation set."""

    key: MaskKey
    encrypted_accuracy: float  # encrypted model on encrypted images
    original_accuracy: float  # best clear-image model on encrypted images clipped to [0, 1]
    ciphertext_ssim: float  # SSIM between encrypted and clear images (looking at it)
    attack_ssim: dict[str, float] = field(default_factory=dict)
    attack_psnr: dict[str, float] = field(default_factory=dict)
    original_accuracies: dict[str, float] = field(default_factory=dict)  # per clear-image model
    attacker_accuracy: dict[str, float] = field(default_factory=dict)  # per attacker view (see AttackFigures)
    linkage: dict[str, float] = field(default_factory=dict)  # linkage rate per view (see AttackFigures)

    @property
    def worst_attack_ssim(self) -> float:
        """The most revealing of the ciphertext itself and every attack's reconstruction."""
        return max([self.ciphertext_ssim, *self.attack_ssim.values()])

    @property
    def worst_attacker_accuracy(self) -> float | None:
        """The best attacker classifier's accuracy; None when none was measured."""
        return max(self.attacker_accuracy.values(), default=None)

    @property
    def worst_linkage(self) -> float | None:
        """The highest linkage rate over the views; None when none was measured."""
        return max(self.linkage.values(), default=None)

    def describe(self) -> str:
        """The candidate's figures in a phrase (no key material)."""
        worst_ssim = max([("ciphertext", self.ciphertext_ssim), *self.attack_ssim.items()], key=lambda kv: kv[1])
        text = (f"{self.key.name} (encrypted accuracy {self.encrypted_accuracy:.3f}, original accuracy "
                f"{self.original_accuracy:.3f}, worst attack SSIM {worst_ssim[1]:.3f} by {worst_ssim[0]}")
        if self.attacker_accuracy:
            view, best = max(self.attacker_accuracy.items(), key=lambda kv: kv[1])
            text += f", attacker accuracy {best:.3f} by {view}"
        if self.linkage:
            view, best = max(self.linkage.items(), key=lambda kv: kv[1])
            text += f", linkage {best:.3f} by {view}"
        return text + ")"

    def as_row(self) -> dict[str, object]:
        row: dict[str, object] = {
            "mask": self.key.name,
            "family": self.key.family,
            "mode": self.key.mode,
            "encrypted_accuracy": self.encrypted_accuracy,
            "original_accuracy": self.original_accuracy,
        }
        for model, value in self.original_accuracies.items():
            row[f"original_{model}_accuracy"] = value
        row["ciphertext_ssim"] = self.ciphertext_ssim
        for kind in self.attack_ssim:
            row[f"{kind}_ssim"] = self.attack_ssim[kind]
            row[f"{kind}_psnr"] = self.attack_psnr[kind]
        row["worst_ssim"] = self.worst_attack_ssim
        for view, value in self.attacker_accuracy.items():
            row[f"attacker_{view}_accuracy"] = value
        if self.attacker_accuracy:
            row["worst_attacker_accuracy"] = self.worst_attacker_accuracy
        for view, value in self.linkage.items():
            row[f"linkage_{view}"] = value
        if self.linkage:
            row["worst_linkage"] = self.worst_linkage
        return row


@dataclass(frozen=True)
class MaskChoice:
    """The rule's verdict: the chosen candidate, and whether it meets the rule."""

    index: int
    qualified: bool
    message: str = ""  # when not qualified: the rule's limits and the least bad candidate's figures


def _excesses(score: MaskScore, rule: MaskRule) -> list[float]:
    """How far each capped figure lies above its cap (<= 0: within it), worst first."""
    over = [-1.0]
    if rule.name == "constrained":
        over.append(score.original_accuracy - rule.max_original_accuracy)
    if rule.max_attack_ssim is not None:
        over.append(score.worst_attack_ssim - rule.max_attack_ssim)
    worst_accuracy = score.worst_attacker_accuracy
    if rule.max_attacker_accuracy is not None and worst_accuracy is not None:
        over.append(worst_accuracy - rule.max_attacker_accuracy)
    worst_linkage = score.worst_linkage
    if rule.max_linkage is not None and worst_linkage is not None:
        over.append(worst_linkage - rule.max_linkage)
    return sorted((max(0.0, value) for value in over), reverse=True)


def select_mask(scores: Sequence[MaskScore], rule: MaskRule) -> MaskChoice:
    """The best candidate meeting ``rule`` or, when none does, the least bad one.

    The least bad candidate is the one whose worst figure exceeds its cap by least; equal
    worst excesses (every candidate linking at 1.0, say) are compared by the next worst, and
    so on, then by the better objective.

    Raises
    ------
    SelectionError
        When the set is empty.
    """
    if not scores:
        raise SelectionError("the mask set is empty; add candidates")
    if rule.name == "constrained":
        objective = [s.encrypted_accuracy for s in scores]
        limits = [f"original accuracy <= {rule.max_original_accuracy:g}"]
    elif rule.name == "gap":
        objective = [s.encrypted_accuracy - s.original_accuracy for s in scores]
        limits = []
    else:
        raise ConfigError(f"unknown mask rule {rule.name!r}; choose 'constrained' or 'gap'")
    if rule.max_attack_ssim is not None:
        limits.append(f"attack SSIM <= {rule.max_attack_ssim:g}")
    if rule.max_attacker_accuracy is not None:
        limits.append(f"attacker accuracy <= {rule.max_attacker_accuracy:g}")
    if rule.max_linkage is not None and any(s.linkage for s in scores):  # a cap on nothing measured is not shown
        limits.append(f"linkage <= {rule.max_linkage:g}")
    excesses = [_excesses(s, rule) for s in scores]
    chosen = pick_feasible(objective, [over[0] for over in excesses])
    if chosen is not None:
        return MaskChoice(chosen, True)
    least_bad = min(range(len(scores)), key=lambda i: ([round(v, 12) for v in excesses[i]], -objective[i], i))
    message = (f"no mask meets the rule ({', '.join(limits)}); the best available is "
               f"{scores[least_bad].describe()}")
    return MaskChoice(least_bad, False, message)


def choose_mask(scores: Sequence[MaskScore], rule: MaskRule) -> int:
    """Index of the target mask under ``rule``, which it must meet.

    Raises
    ------
    SelectionError
        When no candidate meets the rule; the message names the closest one.
    """
    choice = select_mask(scores, rule)
    if not choice.qualified:
        raise SelectionError(f"{choice.message}; relax the rule or add candidates")
    return choice.index
