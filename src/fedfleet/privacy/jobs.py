"""End-to-end jobs behind ``fedfleet privacy mask`` and ``fedfleet privacy occlude``.

Each job loads its data, fits the selector and returns a result object holding the
tables and example images; rendering lives in :mod:`fedfleet.report.privacy`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from fedfleet.data.datasets import ArrayDataset, load_dataset
from fedfleet.errors import DataError
from fedfleet.privacy.config import MaskJobConfig, OcclusionJobConfig, OcclusionSecurityConfig, PrivacyDataConfig
from fedfleet.privacy.inpainting import LearnedInpainter, TeleaInpainter
from fedfleet.privacy.mask_selection import EncryptionMaskSelector, MaskRule, MaskScore, clear_baseline
from fedfleet.privacy.masks import MaskKey, secret_keys
from fedfleet.privacy.occlusion import (
    OcclusionRegion,
    centred_region,
    generate_regions,
    occlude,
)
from fedfleet.privacy.occlusion_selection import (
    Inpainter,
    OcclusionRule,
    OcclusionScore,
    OcclusionSelector,
    train_on_candidates,
    train_on_occluded,
)
from fedfleet.privacy.seeding import Stream, derive_seed, stream
from fedfleet.privacy.sensitivity import sensitivity_map
from fedfleet.privacy.training import accuracy, train_classifier

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """Progress sink that discards messages."""


@dataclass(frozen=True)
class JobData:
    """Training, validation (selection), held-out (checking the choice) and public images."""

    train: ArrayDataset
    validation: ArrayDataset
    holdout: ArrayDataset
    public: ArrayDataset


def load_job_data(config: PrivacyDataConfig, seed: int, public_size: int = 0) -> JobData:
    """Load the data set and carve out public, training, validation and held-out subsets by seed.

    Validation and held-out images come from the test split without overlap; the held-out
    part is empty when the validation set uses the whole test split.
    """
    split = load_dataset(config.dataset, config.root)
    rng = stream(seed, Stream.DATA_SPLIT)
    order = rng.permutation(len(split.train))
    public, rest = order[:public_size], order[public_size:]
    if config.train_size is not None and config.train_size > len(rest):
        raise DataError(f"data.train_size ({config.train_size}) exceeds the {len(rest)} training images of "
                        f"{config.dataset} left after {public_size} public ones; lower it or set it to null for all")
    train = rest if config.train_size is None else rest[: config.train_size]
    test_order = rng.permutation(len(split.test))
    if config.test_size is not None and config.test_size > len(test_order):
        raise DataError(f"data.test_size ({config.test_size}) exceeds the {len(test_order)} test images of "
                        f"{config.dataset}; lower it or set it to null for all")
    n_validation = len(test_order) if config.test_size is None else config.test_size
    validation = test_order[:n_validation]
    holdout = test_order[n_validation : n_validation + config.holdout_size]
    return JobData(split.train.subset(train), split.test.subset(validation), split.test.subset(holdout),
                   split.train.subset(public))


def mask_keys(config: MaskJobConfig) -> list[MaskKey]:
    """The candidate keys of the config, seeds from :mod:`secrets` (never from ``config.seed``)."""
    keys: list[MaskKey] = []
    for c in config.candidates:
        keys += secret_keys(c.family, c.mode, c.count, first_index=len(keys),
                            strength=c.strength, weight=c.weight, block=c.block)
    return keys


@dataclass
class MaskJobResult:
    """What ``privacy mask`` produced."""

    config: MaskJobConfig
    selector: EncryptionMaskSelector
    baseline: dict[str, object]  # no mask: original model on clear images
    random_index: int  # a candidate drawn at random, the reference the rule must beat
    holdout: list[dict[str, float]]  # per candidate, encrypted and best original accuracy on held-out images
    holdout_images: int
    holdout_clear_accuracy: float | None  # original model on clear held-out images
    deployed: dict[str, object]  # the saved model: its accuracy on the images named in "images"
    classes: tuple[str, ...]  # class names, index = label

    @property
    def scores(self) -> list[MaskScore]:
        return self.selector.scores_

    @property
    def chosen(self) -> MaskScore:
        return self.selector.scores_[self.selector.target_index_]

    def summary(self) -> dict[str, object]:
        rows = [s.as_row() for s in self.scores]
        return {
            "target_mask": self.chosen.key.public_dict(),
            "qualified": self.selector.qualified_,
            "warning": self.selector.warning_,
            "chosen": rows[self.selector.target_index_],
            "random_choice": rows[self.random_index],
            "no_mask": self.baseline,
            "candidates": len(rows),
            "holdout": self.holdout_summary(),
            "keys": self.config.keys,
            "model": self.deployed,
        }

    def holdout_random_mean(self) -> dict[str, float]:
        """Both models' held-out accuracy averaged over candidates: the value of a random choice."""
        return {key: float(np.mean([row[key] for row in self.holdout])) for key in self.holdout[0]}

    def holdout_summary(self) -> dict[str, object]:
        """Chosen mask against the mean candidate on held-out images (empty without them)."""
        if not self.holdout:
            return {}
        return {"images": self.holdout_images, "chosen": self.holdout[self.selector.target_index_],
                "random_choice_mean": self.holdout_random_mean(), "no_mask_accuracy": self.holdout_clear_accuracy}


def run_mask_job(config: MaskJobConfig, progress: Progress = _quiet) -> MaskJobResult:
    """Train, score, attack and select an encryption mask as ``config`` says."""
    keys = mask_keys(config)  # bad candidates fail before any data is loaded
    # Data first, progress after: a bad data set or size is the only line on stderr.
    data = load_job_data(config.data, config.seed, config.data.public_size)
    progress(f"loaded {config.data.dataset}: {len(data.train)} training, {len(data.validation)} validation images")
    progress(f"training the original and encrypted models; scoring {len(keys)} candidate masks")
    r, a = config.rule, config.attacks
    rule = MaskRule(r.name, r.max_original_accuracy, r.max_attack_ssim, r.max_attacker_accuracy, r.require_qualified,
                    r.max_linkage)
    selector = EncryptionMaskSelector(
        keys, rule, model=config.model.name, original_models=tuple(config.original_models),
        epochs=config.model.epochs, batch_size=config.model.batch_size, lr=config.model.lr,
        encrypted_training=config.encrypted_training, per_image=config.keys == "per_image",
        attacks=tuple(a.kinds), attack_keys=a.keys,
        attack_hidden=a.hidden, attack_epochs=a.epochs, decoder_epochs=a.decoder_epochs, known_pairs=a.known_pairs,
        n_examples=config.examples, random_state=config.seed,
    ).fit(data.train, data.validation, data.public)
    if selector.warning_ is not None:
        progress(f"warning: {selector.warning_}")
    random_index = int(stream(config.seed, Stream.RANDOM_CHOICE).integers(len(keys)))
    holdout, holdout_clear = [], None
    if len(data.holdout):
        holdout = selector.accuracies(data.holdout)
        holdout_clear = accuracy(selector.original_model_, data.holdout.x, data.holdout.y)
    baseline = clear_baseline(selector.original_model_, data.validation)
    return MaskJobResult(config, selector, baseline, random_index, holdout, len(data.holdout), holdout_clear,
                         _deployed(data, lambda x, y: accuracy(selector.model_, selector.transform(x), y)),
                         data.train.classes)


def _deployed(data: JobData, score: Callable[[torch.Tensor, torch.Tensor], float]) -> dict[str, object]:
    """The saved model's accuracy on held-out images (validation images when there are none)."""
    checked, label = (data.holdout, "held-out") if len(data.holdout) else (data.validation, "validation")
    return {"accuracy": score(checked.x, checked.y), "images": f"{len(checked)} {label} images"}


@dataclass
class OcclusionJobResult:
    """What ``privacy occlude`` produced."""

    config: OcclusionJobConfig
    selector: OcclusionSelector
    accuracies: dict[str, float]  # target model clear / occluded, retrained model occluded (see accuracy_images)
    baselines: dict[str, OcclusionScore]  # centred / random regions of the chosen shape and size
    random_draws: int  # random placements averaged in the "random" baseline
    holdout: dict[str, float]  # availability (accuracy) of chosen and baselines on held-out images
    examples: dict[str, torch.Tensor] = field(default_factory=dict)  # clear / occluded / inpainted
    accuracy_images: str = ""  # which images ``accuracies`` were measured on (held-out ones when there are any)
    model: nn.Module | None = None  # the saved model: trained on occluded images (clear ones without retrain)
    deployed: dict[str, object] = field(default_factory=dict)  # its accuracy on occluded images
    classes: tuple[str, ...] = ()  # class names, index = label
    input_shape: tuple[int, ...] = ()  # one image's (C, H, W)

    @property
    def scores(self) -> list[OcclusionScore]:
        return self.selector.scores_

    @property
    def chosen(self) -> OcclusionScore:
        return self.selector.scores_[self.selector.target_index_]

    def baseline_label(self, name: str) -> str:
        """How a baseline is described in tables."""
        if name == "random":
            return f"random placements (mean of {self.random_draws})"
        return self.baselines[name].region.name

    def summary(self) -> dict[str, object]:
        return {
            "target_region": self.chosen.region.to_dict(),
            "chosen": self.chosen.as_row(),
            "baselines": {name: score.as_row(self.baseline_label(name)) for name, score in self.baselines.items()},
            "accuracy": self.accuracies,
            "accuracy_images": self.accuracy_images,
            "candidates": len(self.scores),
            "holdout_accuracy": self.holdout,
            "model": self.deployed,
        }


def random_placement(template: OcclusionRegion, rng: np.random.Generator, attempts: int = 1000) -> OcclusionRegion:
    """A region of ``template``'s shape, size and count at uniformly random non-overlapping corners."""
    rows, cols = template.image_size
    for _ in range(attempts):
        tops = rng.integers(rows - template.height + 1, size=len(template.corners))
        lefts = rng.integers(cols - template.width + 1, size=len(template.corners))
        corners = tuple((int(t), int(c)) for t, c in zip(tops, lefts, strict=True))
        try:
            return OcclusionRegion(template.shape, template.height, template.width, corners,
                                   template.image_size)
        except DataError:
            continue
    raise DataError(f"could not place {len(template.corners)} disjoint regions at random in {attempts} tries")


def _mean_score(scores: list[OcclusionScore], template: OcclusionRegion) -> OcclusionScore:
    def mean(attribute: str) -> float:
        return float(np.mean([getattr(s, attribute) for s in scores]))

    names = scores[0].unrestored if scores else {}
    return OcclusionScore(template, mean("restoration"), mean("saliency_covered"), mean("security"),
                          mean("availability"),
                          {name: float(np.mean([s.unrestored[name] for s in scores])) for name in names})


def _baselines(
    selector: OcclusionSelector, model: nn.Module, scored: ArrayDataset, random_regions: list[OcclusionRegion]
) -> dict[str, OcclusionScore]:
    """Random placements (averaged) and, for single regions, the centred region, scored alike."""
    target = selector.target_
    saliency = selector.saliency(scored)
    randoms = [selector.score(region, model, scored, saliency) for region in random_regions]
    baselines = {"random": _mean_score(randoms, target)}
    if len(target.corners) == 1:
        baselines["centred"] = selector.score(centred_region(target), model, scored, saliency)
    return baselines


def _holdout_availability(
    model: nn.Module, holdout: ArrayDataset, target: OcclusionRegion, random_regions: list[OcclusionRegion],
    fill: float,
) -> dict[str, float]:
    """Target-model accuracy on held-out occluded images for the chosen region and the baselines."""
    if not len(holdout):
        return {}

    def occluded_accuracy(region: OcclusionRegion) -> float:
        return accuracy(model, occlude(holdout.x, region, fill), holdout.y)

    result = {"chosen": occluded_accuracy(target),
              "random": float(np.mean([occluded_accuracy(r) for r in random_regions]))}
    if len(target.corners) == 1:
        result["centred"] = occluded_accuracy(centred_region(target))
    return result


def _accuracy_images(data: JobData, n_scored: int) -> tuple[ArrayDataset, str]:
    """Images for the clear / occluded / retrained accuracies, and how to describe them.

    Held-out images when there are any, else the validation images the candidates were not
    scored on; only when neither exists, all validation images (said so in the label).
    """
    if len(data.holdout):
        return data.holdout, f"{len(data.holdout)} held-out images (not used for selection)"
    unscored = data.validation.subset(np.arange(n_scored, len(data.validation)))
    if len(unscored):
        return unscored, f"{len(unscored)} validation images not used for selection"
    return data.validation, (f"all {len(data.validation)} validation images, including the {n_scored} "
                             "used for selection (optimistic)")


def _inpainters(
    security: OcclusionSecurityConfig, public: torch.Tensor, regions: list[OcclusionRegion], fill: float, seed: int,
    progress: Progress,
) -> list[Inpainter]:
    """The adversaries of ``security.inpainters``; the learned one is trained on the public images."""
    inpainters: list[Inpainter] = []
    for name in security.inpainters:
        if name == "learned":
            progress(f"training the learned inpainter on {len(public)} public images")
            inpainters.append(LearnedInpainter(epochs=security.learned_epochs, random_state=seed)
                              .fit(public, regions, fill))
        else:
            inpainters.append(TeleaInpainter(security.inpaint_radius, name))
    return inpainters


def run_occlusion_job(
    config: OcclusionJobConfig, progress: Progress = _quiet, random_draws: int = 10
) -> OcclusionJobResult:
    """Train the target model, score occlusion candidates, select, and retrain on occluded images."""
    data = load_job_data(config.data, config.seed, config.data.public_size)
    progress(f"loaded {config.data.dataset}: {len(data.train)} training, {len(data.validation)} validation images")
    m, o, s = config.model, config.occlusion, config.security
    size = (data.train.input_shape[1], data.train.input_shape[2])
    regions = generate_regions(size, o.shapes, o.sizes, count=o.count, stride=o.stride,
                               max_candidates=o.max_candidates, random_state=config.seed)
    model_seed = derive_seed(config.seed, Stream.TARGET_MODEL)
    if config.availability_model == "occluded":
        progress("training the task model on images occluded by random candidate regions")
        model = train_on_candidates(data.train, regions, m.name, fill=o.fill, epochs=m.epochs,
                                    batch_size=m.batch_size, lr=m.lr, seed=model_seed)
    else:
        progress("training the task model on clear images")
        model = train_classifier(data.train, m.name, epochs=m.epochs, batch_size=m.batch_size, lr=m.lr,
                                 seed=model_seed)
    n_scored = min(config.eval_size, len(data.validation))
    scored = data.validation.subset(np.arange(n_scored))
    sensitivity = sensitivity_map(scored, data.train, boxes=s.sensitive_boxes, mask_file=s.sensitive_mask,
                                  groups=s.sensitive_groups, model_name=m.name, epochs=m.epochs,
                                  seed=derive_seed(config.seed, Stream.TARGET_MODEL, 1))
    inpainters = _inpainters(s, data.public.x, regions, o.fill, config.seed, progress)
    progress(f"scoring {len(regions)} candidate regions on {len(scored)} images against "
             f"{', '.join(i.name for i in inpainters)}")
    selector = OcclusionSelector(
        regions, OcclusionRule(config.rule.name, config.rule.min_availability, config.rule.security_weight),
        inpainters=inpainters, saliency_weight=s.saliency_weight, sensitivity=sensitivity,
        availability=config.availability, fill=o.fill,
    ).fit(model, scored)
    deployed_model = model
    target = selector.target_
    rng = stream(config.seed, Stream.RANDOM_PLACEMENT)
    random_regions = [random_placement(target, rng) for _ in range(random_draws)]
    checked, checked_label = _accuracy_images(data, n_scored)
    occluded_checked = occlude(checked.x, target, o.fill)
    accuracies = {"clear": accuracy(model, checked.x, checked.y),
                  "occluded": accuracy(model, occluded_checked, checked.y)}
    if config.retrain:
        progress("training a recognition model on occluded images")
        occluded_model = train_on_occluded(data.train, target, m.name, fill=o.fill, epochs=m.epochs,
                                           batch_size=m.batch_size, lr=m.lr, seed=model_seed)
        accuracies["retrained_occluded"] = accuracy(occluded_model, occluded_checked, checked.y)
        deployed_model = occluded_model
    occluded_validation = occlude(data.validation.x[: config.examples], target, o.fill)
    shown = data.validation.x[: config.examples]
    examples = {"clear": shown, "occluded": occluded_validation,
                **{f"{i.name} inpainted": i.inpaint(occluded_validation, target) for i in inpainters}}
    return OcclusionJobResult(
        config, selector, accuracies, _baselines(selector, model, scored, random_regions), random_draws,
        _holdout_availability(model, data.holdout, target, random_regions, o.fill), examples,
        accuracy_images=checked_label, model=deployed_model,
        deployed=_deployed(data, lambda x, y: accuracy(deployed_model, occlude(x, target, o.fill), y)),
        classes=data.train.classes, input_shape=data.train.input_shape,
    )
