"""Validated run configuration: YAML or dict in, typed pydantic models out.

Every key has a default, unknown keys are errors, and ``--set a.b=value`` overrides are
parsed as YAML scalars before validation, so ``--set train.lr=0.1`` gives a float.
"""

from __future__ import annotations

import math
import re
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from fedfleet.errors import ConfigError

FLOAT32_MAX = 3.4028234663852886e38  # largest finite float32

ModelT = TypeVar("ModelT", bound=BaseModel)

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"


class ConfigSection(BaseModel):
    """Base of every config section: unknown keys, non-finite floats and loose types are errors.

    Strict types: ``true`` is not an integer and ``2.5`` (or ``1e12``) is not silently taken as one.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False, strict=True)


class DataConfig(ConfigSection):
    dataset: str = "fashion_mnist"  # fashion_mnist | digits
    root: str | None = None  # folder with the data set's files; None searches the usual places
    num_clients: int = Field(100, ge=1)  # devices the training set is split over
    partition: Literal["iid", "dirichlet", "shards", "quantity"] = "dirichlet"
    alpha: float = Field(0.5, gt=0)  # Dirichlet concentration: smaller is more Non-IID
    shards_per_client: int = Field(2, ge=1)  # classes (shards) per client for `shards`
    quantity_sigma: float = Field(1.0, gt=0)  # log-normal sigma of client sizes for `quantity`
    test_fraction: float = Field(1.0, gt=0, le=1)  # share of the test set used for evaluation


class ModelConfig(ConfigSection):
    name: str = "cnn"  # mlp | cnn | lenet5


class TrainConfig(ConfigSection):
    mode: Literal["sync", "async"] = "sync"  # async: aggregate each update as it arrives (docs/async.md)
    rounds: int = Field(30, ge=1)  # sync rounds (async: aggregations, i.e. new global versions)
    clients_per_round: int = Field(10, ge=1)  # cohort size per round
    local_epochs: int = Field(1, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(0.05, gt=0, le=FLOAT32_MAX)  # parameters are float32: a larger step cannot be taken
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    eval_every: int = Field(1, ge=1)  # evaluate the global model every k rounds
    target_accuracy: float | None = Field(None, gt=0, le=1)  # for time_to_target_s
    deadline_s: float | None = Field(None, gt=0)  # drop devices finishing later; an empty round lasts this long
    eval_batch_size: int = Field(1000, ge=1)
    concurrency: int | None = Field(None, ge=1)  # async: devices training at once; None = clients_per_round
    max_virtual_time_s: float | None = Field(None, gt=0)  # async: stop when the virtual clock passes this
    max_staleness: int | None = Field(None, ge=0)  # async: reject updates more versions old than this
    task_timeout_s: float | None = Field(None, gt=0)  # stop waiting for a task after this; sync: like deadline_s


ASYNC_STRATEGY_KEYS: dict[str, tuple[str, ...]] = {  # each asynchronous strategy's own keys
    "fedasync": ("alpha", "staleness", "staleness_a", "staleness_b"),
    "fedbuff": ("buffer_size",),
    "fedasmu": ("mix_scale", "meta_lr", "refresh_at", "refresh_beta"),
}
ASYNC_STRATEGY_DEFAULTS: dict[str, Any] = {
    "alpha": 0.6, "staleness": "polynomial", "staleness_a": 0.5, "staleness_b": 4,
    "buffer_size": 10, "mix_scale": 1.0, "meta_lr": 0.05, "refresh_at": 0.5, "refresh_beta": 0.5,
}
STRATEGY_KEYS: dict[str, tuple[str, ...]] = {  # every strategy's own keys (docs/noniid.md for noniid)
    **ASYNC_STRATEGY_KEYS,
    "noniid": ("adaptive", "epsilon", "lr_lambda", "lr_b", "decay", "reference"),
}
STRATEGY_DEFAULTS: dict[str, Any] = {
    **ASYNC_STRATEGY_DEFAULTS,
    "adaptive": True, "epsilon": 1e-3, "lr_lambda": 0.1, "lr_b": 0.01, "decay": 0.99, "reference": "counts",
}


class StrategyConfig(ConfigSection):
    name: str = "fedavg"  # fedavg | fedprox | fednova | noniid | fedasync | fedbuff | fedasmu
    mu: float = Field(0.01, ge=0)  # FedProx proximal coefficient
    server_lr: float = Field(1.0, gt=0)  # global step size applied to the aggregated delta (FedBuff's eta_g)
    # asynchronous strategies (docs/async.md); null for the others, filled with defaults for the chosen one
    alpha: float | None = Field(None, gt=0, le=1)  # fedasync: mixing weight before the staleness factor
    staleness: Literal["constant", "polynomial", "hinge"] | None = None  # fedasync: s(t - o)
    staleness_a: float | None = Field(None, ge=0)  # fedasync: exponent (polynomial) or slope (hinge)
    staleness_b: int | None = Field(None, ge=0)  # fedasync: hinge threshold in versions
    buffer_size: int | None = Field(None, ge=1)  # fedbuff: K updates buffered per aggregation
    mix_scale: float | None = Field(None, gt=0)  # fedasmu: mu in alpha = mu*xi / (1 + mu*xi)
    meta_lr: float | None = Field(None, ge=0)  # fedasmu: step size of the server-side steps on lambda, sigma, iota
    refresh_at: float | None = Field(None, ge=0, lt=1)  # fedasmu: share of local steps before the refresh; 0 = never
    refresh_beta: float | None = Field(None, ge=0, le=1)  # fedasmu: bound on the device's blend weight beta
    # noniid (docs/noniid.md): weights n_k / (lambda_k * D_k + b_k), D_k the device's Non-IID degree
    adaptive: bool | None = None  # noniid: learn lambda_k, b_k per device (FedDH); false: lambda=1, b=epsilon (FedJS)
    epsilon: float | None = Field(None, gt=0)  # noniid: floor of the denominator, so D_k = 0 cannot divide by 0
    lr_lambda: float | None = Field(None, ge=0)  # noniid (adaptive): step size on lambda_k
    lr_b: float | None = Field(None, ge=0)  # noniid (adaptive): step size on b_k
    decay: float | None = Field(None, gt=0, le=1)  # noniid (adaptive): step sizes x decay per update of the device
    reference: Literal["counts", "uniform"] | None = None  # noniid: global label distribution devices compare with

    @model_validator(mode="after")
    def _own_keys_only(self) -> StrategyConfig:
        own = STRATEGY_KEYS.get(self.name, ())
        for key in (k for keys in STRATEGY_KEYS.values() for k in keys):
            if key in own and getattr(self, key) is None:
                object.__setattr__(self, key, STRATEGY_DEFAULTS[key])
            elif key not in own and getattr(self, key) is not None:
                owners = ", ".join(n for n, keys in STRATEGY_KEYS.items() if key in keys)
                raise ConfigError(f"strategy.{key} is not a key of strategy {self.name!r}; remove it "
                                  f"(it belongs to {owners})")
        return self


class DropoutConfig(ConfigSection):
    mean_online_s: float = Field(gt=0)  # mean length of an online period (exponential)
    mean_offline_s: float = Field(gt=0)  # mean length of an offline period (exponential)


class FleetConfig(ConfigSection):
    profile: Literal["uniform", "heterogeneous"] = "heterogeneous"
    base_speed: float = Field(200.0, gt=0)  # median device compute speed, samples/s
    speed_spread: float = Field(20.0, ge=1)  # fastest/slowest speed ratio (heterogeneous)
    bandwidth_mbps: float = Field(20.0, gt=0)  # median uplink bandwidth; downlink is 5x
    availability: float = Field(1.0, gt=0, le=1)  # probability a device is online at a round
    fluctuation: float = Field(0.2, ge=0)  # shifted-exponential compute noise, relative
    failure_rate: float = Field(0.0, ge=0, lt=1)  # probability a dispatched task never returns
    dropout: DropoutConfig | None = None  # on/off periods of every device on the virtual clock
    trace: str | None = None  # availability trace file (CSV or JSON of online intervals; docs/async.md)

    @field_validator("trace")
    @classmethod
    def _trace_is_a_file(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"fleet.trace {value} is not a file; pass an existing CSV or JSON trace")
        return value

    @model_validator(mode="after")
    def _finite_times(self) -> FleetConfig:
        slowest = self.base_speed / math.sqrt(self.speed_spread) if self.profile == "heterogeneous" else self.base_speed
        for key, value in (("base_speed", slowest), ("bandwidth_mbps", self.bandwidth_mbps)):
            if not math.isfinite(1.0 / value):
                raise ValueError(f"fleet.{key}={getattr(self, key):.3g} is so small that device times are "
                                 "infinite; give a realistic value")
        return self


class ValidationConfig(ConfigSection):
    # reject an update whose norm exceeds ratio x the reference model norm, or exceeds ratio x the
    # cohort's median norm both in total and per local step
    max_norm_ratio: float = Field(10.0, gt=1)
    # the reference model norm is the median norm of the global models of the last k rounds, so one
    # poisoned round cannot move the bound; 1 follows the current global model
    reference_rounds: int = Field(10, ge=1)


class AggregatorConfig(ConfigSection):
    """How the accepted updates of a round are combined; composes with any strategy."""

    # mean keeps the strategy's own weighted average; median / trimmed_mean replace it coordinate-wise;
    # krum / multi_krum first keep the update(s) closest to their neighbours (Blanchard et al., 2017);
    # asynchronous strategies take one update at a time, so with them only mean (with clip_norm) applies
    name: Literal["mean", "median", "trimmed_mean", "krum", "multi_krum"] = "mean"
    trim_fraction: float = Field(0.1, ge=0, lt=0.5)  # share cut from each end per coordinate (trimmed_mean)
    num_byzantine: int | None = Field(None, ge=0)  # attackers Krum tolerates; None: the most it can, (n - 3) // 2
    multi_krum_m: int | None = Field(None, ge=1)  # updates multi-Krum keeps; None: n - num_byzantine
    # clip each update's delta to this L2 norm before aggregating; "auto": the median update norm of
    # the last clip_history aggregations (a server-side bound a poisoned model cannot move); None: off
    clip_norm: float | Literal["auto"] | None = None
    clip_history: int = Field(10, ge=1)  # aggregations (async: arrivals) whose update norms "auto" spans

    @field_validator("clip_norm", mode="before")
    @classmethod
    def _positive_auto_or_null(cls, value: Any) -> Any:
        if value is None or value == "auto":
            return value
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
            return value
        raise ValueError("must be a positive number, 'auto' or null")


class BackendConfig(ConfigSection):
    name: Literal["local", "ray"] = "local"
    address: str | None = None  # ray: None starts Ray here; "auto" or "ray://host:port" joins a cluster
    threads: int | None = Field(1, ge=1)  # PyTorch intra-op threads per process; None keeps PyTorch's default
    workers: int | Literal["auto"] = "auto"  # processes (ray: actors) training a round side by side; auto: cores
    vectorize: bool = False  # train a round's clients at once with torch.func (plain SGD, models without state)
    # workers (ray: actors) keep their deltas and send one weighted sum each instead of every update, for
    # FedAvg/FedProx without client hooks; equal to the per-update path up to the order of float additions
    sum_updates: bool = False
    # PyTorch threads for the server's evaluation, which runs while no client trains; auto: the cores.
    # Metrics are the same for one thread count on any machine (test_loss may differ in its last bits otherwise)
    eval_threads: int | Literal["auto"] = "auto"

    @field_validator("workers", "eval_threads", mode="before")
    @classmethod
    def _positive_or_auto(cls, value: Any) -> Any:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError("must be a whole number (1 or more) or 'auto'")


class PruningConfig(ConfigSection):
    """Structured filter pruning while the federation trains (docs/pruning.md)."""

    enabled: bool = False
    # adaptive: FedAP's per-layer rates, adjusted by validation accuracy; uniform: every conv layer at
    # target_rate at once; magnitude: unstructured, the smallest weights zeroed (a reference: no speed-up)
    method: Literal["adaptive", "uniform", "magnitude"] = "adaptive"
    start_round: int = Field(5, ge=1)  # the round after which the first layer is pruned
    target_rate: float = Field(0.5, gt=0, lt=1)  # model-level rate: adaptive's weight quantile; uniform's per layer
    delta: float = Field(0.01, ge=0, le=1)  # largest validation accuracy drop a layer's pruning may cost
    step: float = Field(0.1, gt=0, lt=1)  # how much a layer's rate falls after a drop larger than delta
    max_rate: float = Field(0.8, gt=0, lt=1)  # no conv layer loses more than this share of its filters
    recovery_rounds: int = Field(2, ge=1)  # rounds of training before a pruned layer is judged
    importance: Literal["l1", "hrank"] = "l1"  # filter ranking: weight L1 norm, or feature-map rank (HRank)
    try_higher: bool = False  # after a layer keeps its rate, try rate + step (up to max_rate) once more
    validation_fraction: float = Field(0.1, gt=0, lt=1)  # share of the test set the server holds out to judge


class RunConfig(ConfigSection):
    """The whole run: every section has defaults; see configs/default.yaml."""

    name: str = "default"
    seed: int = Field(0, ge=0, lt=2**32)  # seeds NumPy and PyTorch, which take 32-bit seeds
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    strategy: StrategyConfig = StrategyConfig()
    fleet: FleetConfig = FleetConfig()
    validation: ValidationConfig = ValidationConfig()
    aggregator: AggregatorConfig = AggregatorConfig()
    backend: BackendConfig = BackendConfig()
    pruning: PruningConfig = PruningConfig()
    checkpoint_every: int = Field(10, ge=0)  # rounds between checkpoints; 0 disables

    @model_validator(mode="after")
    def _cohort_fits_fleet(self) -> RunConfig:
        if self.train.clients_per_round > self.data.num_clients:
            raise ValueError(
                f"train.clients_per_round ({self.train.clients_per_round}) exceeds "
                f"data.num_clients ({self.data.num_clients})"
            )
        byzantine = self.aggregator.num_byzantine
        if self.aggregator.name in ("krum", "multi_krum") and byzantine is not None:
            most = max(0, (self.train.clients_per_round - 3) // 2)  # Krum needs n > 2f + 2 updates
            if byzantine > most:
                raise ConfigError(f"aggregator.num_byzantine={byzantine} is more than Krum tolerates among "
                                  f"train.clients_per_round={self.train.clients_per_round} updates (at most {most}); "
                                  "lower it or raise clients_per_round")
        is_async = self.strategy.name in ASYNC_STRATEGY_KEYS
        if self.train.mode == "async" and not is_async:
            raise ConfigError(f"strategy {self.strategy.name!r} is synchronous; with train.mode=async choose one "
                              f"of {', '.join(ASYNC_STRATEGY_KEYS)}")
        if self.train.mode == "sync" and is_async:
            raise ConfigError(f"strategy {self.strategy.name!r} is asynchronous; set train.mode=async")
        if self.pruning.enabled and self.pruning.start_round >= self.train.rounds:
            raise ConfigError(f"pruning.start_round={self.pruning.start_round} leaves no round after it in "
                              f"train.rounds={self.train.rounds}: pruning would never be trained; lower it")
        if self.pruning.enabled and self.train.mode == "async":
            raise ConfigError("pruning.enabled needs train.mode=sync: an asynchronous run has updates in flight "
                              "for the old architecture whenever the server would prune")
        faulty = self.fleet.failure_rate > 0 or self.fleet.dropout is not None or self.fleet.trace is not None
        if self.train.mode == "sync" and faulty and self.train.deadline_s is None and self.train.task_timeout_s is None:
            raise ConfigError("a sync round with failing or vanishing devices would wait forever; "
                              "set train.deadline_s or train.task_timeout_s")
        return self


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=x"]`` into a nested dict with YAML-typed values."""
    nested: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {pair!r} is not KEY=VALUE (e.g. --set train.lr=0.1)")
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key!r} conflicts with another override")
        try:
            node[leaf] = parse_yaml(raw) if raw else None
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"override {key!r}: its value is not valid YAML ({first}); quote text values") from None
    return nested


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated recursively with ``update`` (neither is modified).

    A list in ``base`` is updated item by item when ``update`` gives a mapping of indices
    (``--set jobs.0.train.rounds=3`` gives ``{"jobs": {"0": {...}}}``).
    """
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        elif isinstance(value, dict) and isinstance(merged.get(key), list):
            merged[key] = _merge_items(str(key), merged[key], value)
        else:
            merged[key] = value
    return merged


def _merge_items(key: str, items: list[Any], update: dict[str, Any]) -> list[Any]:
    merged = list(items)
    for index, value in update.items():
        if not (str(index).isdigit() and int(index) < len(items)):
            raise ConfigError(f"override {key}.{index}: {key} is a list of {len(items)} item(s); "
                              f"use an index from 0 to {len(items) - 1}")
        item = merged[int(index)]
        is_mapping = isinstance(value, dict) and isinstance(item, dict)
        merged[int(index)] = deep_merge(item, value) if is_mapping else value
    return merged


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, reading ``1e12`` and ``1e-3`` as floats (YAML 1.2) rather than strings,
    and refusing a key given twice in one mapping (plain PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str) -> Any:
    """Parse YAML text safely (no tags that build objects); exponent floats without a dot are floats."""
    return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader: builds no objects


def read_yaml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Read a YAML mapping, with a one-line error for a missing, unreadable or malformed file.

    ``what`` names the file in messages ("config file", "device catalog", ...).
    """
    path = Path(path)
    try:
        loaded = parse_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder; give a YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not a text file (not UTF-8); give a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path} ({exc.strerror or type(exc).__name__})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}".splitlines()[0]) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{what} {path} must hold a mapping of keys, not {type(loaded).__name__}")
    return loaded


def _section_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The config section class that holds the key at ``loc`` (list indices skipped), if known."""
    section: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):
            continue
        if section is None or part not in section.model_fields:
            return None
        section = _model_in(section.model_fields[part].annotation)
    return section


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside an annotation such as ``X``, ``X | None`` or ``list[X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (list, tuple, Union, types.UnionType):
        return next((found for arg in get_args(annotation) if (found := _model_in(arg)) is not None), None)
    return None


def _describe(value: Any) -> str:
    """A value as the user wrote it, short: mappings and lists are named, not dumped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def format_validation_error(error: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line naming the first offending key and what is wrong with it.

    With ``model`` (the validated class), an unknown key's message lists the keys allowed there.
    """
    first: ErrorDetails = error.errors()[0]
    loc = tuple(first["loc"])
    key = ".".join(str(part) for part in loc)
    value = first.get("input")
    kind = first["type"]
    if kind == "value_error":  # a rule across fields: its message names them, the whole input would be noise
        message = first["msg"].removeprefix("Value error, ")
        return f"config key {key!r}: {message}" if key else f"invalid config: {message}"
    if not key:
        return f"invalid config: {first['msg']} (got {_describe(value)})"
    if kind == "finite_number":
        return f"config key {key!r} must be a finite number (got {_describe(value)})"
    if kind == "extra_forbidden":
        section = _section_at(model, loc[:-1]) if model is not None else None
        known = f"; keys allowed here: {', '.join(section.model_fields)}" if section is not None else ""
        return f"unknown config key {key!r}; check its spelling{known}"
    if kind in ("int_type", "int_from_float", "int_parsing"):
        if isinstance(value, float) and value.is_integer():  # 1e12 or 10.0 in the YAML
            return f"config key {key!r} must be a whole number: write {int(value)}, not {value!r}"
        return f"config key {key!r} must be a whole number written in digits, e.g. 10 (got {_describe(value)})"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        ((_, limit),) = first.get("ctx", {}).items()
        return f"config key {key!r} must be {bounds[kind]} {limit:g} (got {_describe(value)})"
    return f"config key {key!r}: {first['msg']} (got {_describe(value)})"


def validate_mapping(model: type[ModelT], raw: dict[str, Any]) -> ModelT:
    """Validate ``raw`` against ``model`` and turn pydantic errors into ConfigError."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model)) from None


def load_model(
    model: type[ModelT],
    source: str | Path | dict[str, Any] | None,
    overrides: list[str] | dict[str, Any] | None = None,
) -> ModelT:
    """Validate a YAML file or mapping (None: all defaults) with overrides applied into ``model``.

    The loader of every config in fedfleet: run configs and each method's job configs.
    """
    if source is None:
        raw: dict[str, Any] = {}
    elif isinstance(source, dict):
        raw = source
    else:
        raw = read_yaml(source)
    update: dict[str, Any] = {}
    if overrides:
        update = parse_overrides(overrides) if isinstance(overrides, list) else overrides
        raw = deep_merge(raw, update)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        message = format_validation_error(exc, model)
        # name the file (with --resume, the run's config.yaml) unless the bad key came from --set
        if isinstance(source, str | Path) and not _overridden(update, exc.errors()[0]["loc"]):
            message = f"config file {source}: {message}"
        raise ConfigError(message) from None


def _overridden(update: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    """True when the key at ``loc`` (or a section above it) was set by an override."""
    node: Any = update
    for part in loc:
        if isinstance(part, int) and isinstance(node, dict):
            part = str(part)  # a list index given by --set
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
        if not isinstance(node, dict):
            return True
    return bool(loc)


def load_config(
    source: str | Path | dict[str, Any] | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
) -> RunConfig:
    """Load and validate a run configuration.

    Parameters
    ----------
    source : path, dict or None
        A YAML file, an already-parsed mapping, or None for configs/default.yaml
        (falling back to built-in defaults when the file is not installed).
    overrides : list of "a.b=value" strings or nested dict, optional
        Applied on top of ``source``.

    Returns
    -------
    RunConfig
        The validated configuration.

    Raises
    ------
    ConfigError
        For unknown keys or invalid values, naming the key.
    """
    if source is None and DEFAULT_CONFIG_PATH.exists():
        source = DEFAULT_CONFIG_PATH
    return load_model(RunConfig, source, overrides)


def dump_config(config: BaseModel) -> str:
    """The fully resolved config as YAML text."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
