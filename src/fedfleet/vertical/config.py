"""The ``fedfleet vertical`` configuration: pydantic sections, unknown keys are errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from fedfleet.config import ConfigSection, load_model


class VerticalDataConfig(ConfigSection):
    dataset: Literal["fashion_mnist", "digits", "breast_cancer"] = "fashion_mnist"
    root: str | None = None  # folder with Fashion-MNIST's files; None searches the usual places
    num_parties: int = Field(2, ge=2)  # active party + passive parties
    columns_per_party: list[int] | None = None  # columns (image columns) per party; None = even
    overlap: float = Field(1.0, gt=0, le=1)  # share of samples each passive party holds
    max_train: int | None = Field(None, ge=10)  # random subset of the training set
    max_test: int | None = Field(None, ge=10)  # random subset of the test set


class AlignmentConfig(ConfigSection):
    method: Literal["psi", "hash"] = "psi"  # psi: ECDH private set intersection; hash: insecure fast mode
    reveal: Literal["intersection", "size"] = "intersection"  # size: parties learn only the overlap count
    salt: str = Field("fedfleet-vertical", min_length=1)  # orders the common samples; hash mode hashes with it

    @model_validator(mode="after")
    def _size_needs_psi(self) -> AlignmentConfig:
        if self.reveal == "size" and self.method != "psi":
            raise ValueError("alignment.reveal=size needs alignment.method=psi (hashing shows every digest)")
        return self


class VerticalModelConfig(ConfigSection):
    embedding_dim: int = Field(16, ge=1)  # bottom-model output size, per party
    bottom_hidden: int = Field(64, ge=1)  # bottom-model hidden width
    interaction_dim: int = Field(32, ge=2)  # interaction-layer output size (even)
    top_hidden: int = Field(32, ge=2)  # top-model hidden width (even)
    top_depth: int = Field(1, ge=0)  # top-model hidden layers
    lipschitz: float = Field(4.0, gt=0)  # certified bound L of passive embedding -> logits

    @model_validator(mode="after")
    def _even_widths(self) -> VerticalModelConfig:
        for key in ("interaction_dim", "top_hidden"):
            if getattr(self, key) % 2:
                raise ValueError(f"model.{key} must be even (MaxMin pairs units)")
        return self


class VerticalTrainConfig(ConfigSection):
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    channel: Literal["serializing", "identity"] = "serializing"  # how tensors travel
    threads: int = Field(1, ge=1)  # intra-op CPU threads; these small models run fastest on one


class RobustnessConfig(ConfigSection):
    attacked_party: int = Field(1, ge=1)  # passive party (1-based) that turns malicious
    eval_samples: int = Field(2000, ge=10)  # test samples used for the attacks
    # noise norm / median clean embedding norm
    noise: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 1.0, 2.0, 4.0])
    # PGD radius / median clean embedding norm
    pgd: list[float] = Field(default_factory=lambda: [0.0, 0.1, 0.25, 0.5, 1.0])
    pgd_steps: int = Field(200, ge=1)
    pgd_restarts: int = Field(10, ge=1)  # PGD runs from fresh random starts; the worst per sample counts
    # factors the embedding is multiplied by (0 sends zeros)
    scales: list[float] = Field(default_factory=lambda: [0.0, 2.0, 5.0, 10.0])
    # training-time attack: shares of batches with corrupted embeddings
    corruption_fractions: list[float] = Field(default_factory=lambda: [0.1, 0.3])
    corruption_kind: Literal["noise", "scale", "zeros"] = "noise"
    corruption_magnitude: float = Field(10.0, ge=0)  # relative noise norm or scale factor
    lipschitz_check_steps: int = Field(50, ge=1)  # Adam steps for adversarial pairs

    @model_validator(mode="after")
    def _fractions_in_range(self) -> RobustnessConfig:
        if any(not 0 < f <= 1 for f in self.corruption_fractions):
            raise ValueError("robustness.corruption_fractions must lie in (0, 1]")
        if any(v < 0 for v in [*self.noise, *self.pgd]):
            raise ValueError("robustness.noise and robustness.pgd sizes must be >= 0")
        return self


class ProtectionConfig(ConfigSection):
    # label protection: Gaussian noise on the gradients sent to passive parties, as a multiple
    # of the batch's RMS gradient norm (noise-to-signal ratio; not a DP budget); 0 = none
    gradient_noise: float = Field(0.0, ge=0)
    # largest L2 norm of a passive embedding the active party uses (clipped on receipt); null = none
    embedding_clip: float | None = Field(None, gt=0)


class BaselinesConfig(ConfigSection):
    unconstrained: bool = True  # the same split model with a plain interaction path and top
    centralised: bool = True  # an MLP on all features in one place
    centralised_hidden: int = Field(200, ge=1)


class VerticalConfig(ConfigSection):
    """A ``fedfleet vertical`` run; see configs/vertical/."""

    name: str = "vertical"
    seed: int = Field(0, ge=0, lt=2**32)  # seeds NumPy and PyTorch, which take 32-bit seeds
    data: VerticalDataConfig = VerticalDataConfig()
    alignment: AlignmentConfig = AlignmentConfig()
    model: VerticalModelConfig = VerticalModelConfig()
    train: VerticalTrainConfig = VerticalTrainConfig()
    robustness: RobustnessConfig = RobustnessConfig()
    protection: ProtectionConfig = ProtectionConfig()
    baselines: BaselinesConfig = BaselinesConfig()

    @model_validator(mode="after")
    def _attacked_party_exists(self) -> VerticalConfig:
        if self.robustness.attacked_party >= self.data.num_parties:
            raise ValueError(
                f"robustness.attacked_party ({self.robustness.attacked_party}) must name a "
                f"passive party 1..{self.data.num_parties - 1}"
            )
        return self


def load_vertical_config(
    source: str | Path | dict[str, Any] | None = None, overrides: list[str] | None = None
) -> VerticalConfig:
    """Validate a YAML file or mapping plus ``a.b=value`` overrides into a VerticalConfig.

    Raises
    ------
    ConfigError
        For unknown keys or invalid values, naming the key.
    """
    return load_model(VerticalConfig, source, overrides)
