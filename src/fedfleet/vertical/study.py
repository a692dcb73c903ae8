"""One ``fedfleet vertical`` run: align, train, attack, compare with the baselines.

Trains the split model with the Lipschitz top and, as baselines, the same split model
with an unconstrained interaction path and top, and an MLP on all features in one place.
Then the attacked passive party perturbs its test-time embedding (noise, PGD, zeros,
scaling), and models are retrained with that party corrupting a fraction of batches.
Perturbation sizes are relative to each model's median clean embedding norm for that
party, so models whose embeddings have different scales are compared fairly. Finally the
same party tries to recover the training labels from the gradients it received (label
leakage, reported whether or not ``protection`` adds noise to those gradients).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from fedfleet.errors import ConfigError
from fedfleet.models import build_model
from fedfleet.threads import torch_threads
from fedfleet.vertical.alignment import Alignment
from fedfleet.vertical.attacks import Corruption, gaussian_noise, pgd, scaled
from fedfleet.vertical.certify import certified_accuracy, empirical_lipschitz, pairwise_certified_accuracy
from fedfleet.vertical.channel import Channel, SerializingChannel, TensorSpec
from fedfleet.vertical.config import RobustnessConfig, VerticalConfig
from fedfleet.vertical.data import VerticalData, load_vertical
from fedfleet.vertical.leakage import label_leakage
from fedfleet.vertical.model import SplitModel
from fedfleet.vertical.parties import sgd
from fedfleet.vertical.psi import psi_overlap_sizes
from fedfleet.vertical.trainer import VerticalClassifier, batch_order, evaluate

Progress = Callable[[str], None]
LIPSCHITZ, UNCONSTRAINED, CENTRALISED = "lipschitz", "unconstrained", "centralised"


@dataclass
class StudyResult:
    """Everything a run measured.

    Attributes
    ----------
    summary : dict
        Headline figures (written to summary.json).
    history : list of dict
        Per-epoch metrics of each split model, with a ``model`` key.
    attacks : list of dict
        Test-time attacks: model, attack, size (relative), radius (absolute), accuracy.
    certified : list of dict
        Certified accuracy per model and relative radius.
    corruption : list of dict
        Training-time corruption: model, fraction, test accuracy.
    model : SplitModel
        The trained split model with the Lipschitz top.
    """

    summary: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    attacks: list[dict[str, Any]] = field(default_factory=list)
    certified: list[dict[str, Any]] = field(default_factory=list)
    corruption: list[dict[str, Any]] = field(default_factory=list)
    model: SplitModel | None = None


def make_estimator(
    config: VerticalConfig, lipschitz: float | None, corruption: Corruption | None = None
) -> VerticalClassifier:
    """The split classifier ``config`` describes, with the given top bound and attacker."""
    sizes = config.model.model_dump(exclude={"lipschitz"})
    return VerticalClassifier(
        **sizes,
        lipschitz=lipschitz,
        epochs=config.train.epochs,
        batch_size=config.train.batch_size,
        lr=config.train.lr,
        momentum=config.train.momentum,
        channel=config.train.channel,
        corruption=corruption,
        corrupt_party=config.robustness.attacked_party,
        embedding_clip=config.protection.embedding_clip,
        gradient_noise=config.protection.gradient_noise,
        random_state=config.seed,
    )


def fit_centralised(config: VerticalConfig, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> nn.Module:
    """An MLP on all features concatenated, trained with the split models' SGD settings."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model("mlp", (x.shape[1],), num_classes, hidden=config.baselines.centralised_hidden)
    optimizer = sgd([model], config.train.lr, config.train.momentum)
    model.train()
    for batches in batch_order(len(y), config.train.batch_size, config.train.epochs, config.seed):
        for batch in batches:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(1) == y).double().mean())


def attack_curves(
    name: str, model: SplitModel, z_active: torch.Tensor, z_passive: Sequence[torch.Tensor], y: torch.Tensor,
    settings: RobustnessConfig, seed: int, channel: Channel | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], float]:
    """Accuracy under each test-time attack, certified accuracy, and the median clean
    embedding norm of the attacked party (the unit of the relative sizes), for one model.

    ``z_active`` and ``z_passive`` are the clean embeddings (active first); each perturbed
    embedding the attacked party sends goes up ``channel`` (counted) when one is given.
    """
    party = settings.attacked_party
    with torch.no_grad():
        clean_logits = model.head(z_active, z_passive)
    target = z_passive[party - 1]
    unit = float(target.norm(dim=1).median())  # sizes are multiples of this norm

    def accuracy_with(z: torch.Tensor) -> float:
        replaced = list(z_passive)
        if channel is not None:
            z = channel.transfer(z, "up", TensorSpec(tuple(z.shape)), f"attacked embedding from party {party}")
        replaced[party - 1] = z
        with torch.no_grad():
            return _accuracy(model.head(z_active, replaced), y)

    generator = torch.Generator().manual_seed(seed)
    rows = [{"model": name, "attack": "noise", "size": s, "radius": s * unit,
             "accuracy": accuracy_with(gaussian_noise(target, s * unit, generator))} for s in settings.noise]
    rows += [{"model": name, "attack": "pgd", "size": s, "radius": s * unit,
              "accuracy": accuracy_with(pgd(model, z_active, z_passive, y, party, s * unit,
                                            settings.pgd_steps, generator, settings.pgd_restarts))}
             for s in settings.pgd]
    rows += [{"model": name, "attack": "scale", "size": s, "radius": abs(s - 1) * unit,
              "accuracy": accuracy_with(scaled(target, s))} for s in settings.scales]
    bound, pair_bounds = model.passive_lipschitz_bound(), model.passive_pair_bounds()
    party_bounds = model.party_pair_bounds(party)  # only the attacked party's embedding moves
    certified = [{"model": name, "size": s, "radius": s * unit,
                  "certified_accuracy": certified_accuracy(clean_logits, y, bound, s * unit),
                  "certified_accuracy_pairwise": pairwise_certified_accuracy(clean_logits, y, pair_bounds,
                                                                             s * unit),
                  "certified_accuracy_party": pairwise_certified_accuracy(clean_logits, y, party_bounds, s * unit)}
                 for s in settings.pgd]
    return rows, certified, unit


def align_splits(
    config: VerticalConfig, data: VerticalData
) -> tuple[list[torch.Tensor], torch.Tensor, list[torch.Tensor], torch.Tensor, dict[str, tuple[Alignment, Channel]]]:
    """Align the training and the test split as ``config.alignment`` says, each over its own channel.

    Returns (train features, train labels, test features, test labels, {split: (alignment, channel)}).

    Raises
    ------
    ConfigError
        With ``alignment.reveal=size``, after the size-only protocol: the parties then know
        how many samples they share, but not which, so there is nothing to train on.
    """
    settings = config.alignment
    if settings.reveal == "size":
        sizes = psi_overlap_sizes([table.ids for table in data.train.tables], SerializingChannel())
        raise ConfigError(
            f"alignment.reveal=size: the passive parties share {sizes} training samples with the active party, "
            "but only the counts were revealed, so there is nothing to train on; set alignment.reveal=intersection"
        )
    channels = {"train": SerializingChannel(), "test": SerializingChannel()}
    xs, y, train = data.train.align(settings.salt, settings.method, channels["train"])
    xt, yt, test = data.test.align(settings.salt, settings.method, channels["test"])
    return xs, y, xt, yt, {"train": (train, channels["train"]), "test": (test, channels["test"])}


def run_study(config: VerticalConfig, progress: Progress = lambda message: None) -> StudyResult:
    """Run everything ``config`` asks for (see the module docstring) with ``train.threads``."""
    with torch_threads(config.train.threads):
        return _run_study(config, progress)


def _run_study(config: VerticalConfig, progress: Progress) -> StudyResult:
    start = time.perf_counter()
    data_cfg = config.data
    data = load_vertical(data_cfg.dataset, data_cfg.num_parties, data_cfg.columns_per_party,
                         data_cfg.overlap, data_cfg.max_train, data_cfg.max_test, config.seed, data_cfg.root)
    xs, y, xt, yt, alignments = align_splits(config, data)
    train_alignment, test_alignment = alignments["train"][0], alignments["test"][0]
    num_classes = len(data.classes)
    progress(f"aligned {train_alignment.overlap} training and {test_alignment.overlap} test samples "
             f"over {len(xs)} parties by {config.alignment.method} (features {list(data.feature_dims)})")
    result = StudyResult(summary={})
    kinds: dict[str, float | None] = {LIPSCHITZ: config.model.lipschitz}
    if config.baselines.unconstrained:
        kinds[UNCONSTRAINED] = None
    accuracy: dict[str, float] = {}
    estimators: dict[str, VerticalClassifier] = {}
    for name, bound in kinds.items():
        def log(entry: dict[str, Any], name: str = name) -> None:
            result.history.append({"model": name, **entry})
            progress(f"{name} epoch {entry['epoch']}: loss {entry['train_loss']:.3f}, "
                     f"test accuracy {entry['test_accuracy']:.4f}")
        estimators[name] = make_estimator(config, bound).fit(xs, y, num_classes, (xt, yt), log)
        accuracy[name] = estimators[name].history_[-1]["test_accuracy"]
    if config.baselines.centralised:
        progress("training the centralised baseline on all features")
        central = fit_centralised(config, torch.cat(xs, dim=1), y, num_classes)
        accuracy[CENTRALISED] = evaluate(lambda parts: central(torch.cat(list(parts), dim=1)), xt, yt)[0]

    n_eval = min(config.robustness.eval_samples, len(yt))
    xe, ye = [x[:n_eval] for x in xt], yt[:n_eval]
    checks: dict[str, dict[str, float]] = {}
    embedding_norms: dict[str, float] = {}
    for name, estimator in estimators.items():
        progress(f"attacking the {name} model's passive party {config.robustness.attacked_party}")
        with torch.no_grad():
            z_active = estimator.model_.bottoms[0](xe[0])
        z_passive = estimator.passive_embeddings(xe)  # split inference: counted in channel_eval_
        rows, certified, embedding_norms[name] = attack_curves(
            name, estimator.model_, z_active, z_passive, ye, config.robustness, config.seed, estimator.channel_eval_
        )
        result.attacks += rows
        result.certified += certified
        checks[name] = empirical_lipschitz(estimator.model_, z_active, z_passive,
                                           config.robustness.lipschitz_check_steps, config.seed)

    for fraction in config.robustness.corruption_fractions:
        attack = Corruption(fraction, config.robustness.corruption_kind, config.robustness.corruption_magnitude)
        for name, bound in kinds.items():
            progress(f"training the {name} model with {fraction:.0%} corrupted batches")
            corrupted = make_estimator(config, bound, attack).fit(xs, y, num_classes)
            result.corruption.append({"model": name, "fraction": fraction, "kind": attack.kind,
                                      "magnitude": attack.magnitude,
                                      "corrupted_batches": corrupted.corrupted_batches_,
                                      "accuracy": corrupted.score(xt, yt)})

    main = estimators[LIPSCHITZ]
    party = config.robustness.attacked_party
    progress(f"label-leakage attack by passive party {party} on the gradients it received")
    leakage = label_leakage(main.received_gradients_[party - 1].numpy(), y.numpy(), num_classes, config.seed)
    alignment_up = sum(channel.bytes_up for _, channel in alignments.values())
    alignment_down = sum(channel.bytes_down for _, channel in alignments.values())
    result.model = main.model_
    result.summary = {
        "final_accuracy": accuracy[LIPSCHITZ],
        "best_accuracy": max(entry["test_accuracy"] for entry in main.history_),
        "wall_time_s": time.perf_counter() - start,
        "virtual_time_s": None,
        "time_to_target_s": None,
        "accuracy": accuracy,
        "certified_bound": main.certified_bound_,
        "passive_embedding_norm": embedding_norms,
        "lipschitz_check": checks,
        "alignment": {split: {**alignment.summary(), "bytes_up": channel.bytes_up, "bytes_down": channel.bytes_down}
                      for split, (alignment, channel) in alignments.items()},
        "alignment_method": config.alignment.method,
        "alignment_bytes_up": alignment_up,
        "alignment_bytes_down": alignment_down,
        "bytes_up": main.channel_.bytes_up + alignment_up,
        "bytes_down": main.channel_.bytes_down + alignment_down,
        "bytes_eval_up": main.channel_eval_.bytes_up,
        "bytes_eval_down": main.channel_eval_.bytes_down,
        "label_leakage": {"attacked_party": party, "gradient_noise": config.protection.gradient_noise, **leakage},
        "feature_dims": list(data.feature_dims),
        "eval_samples": n_eval,
    }
    return result
