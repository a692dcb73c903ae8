"""Random but plausible placement problems, for tests and benchmarks.

Layers draw FLOPs, parameter and activation sizes log-uniformly (embeddings are large
and light, dense/conv layers heavy); device type 0 is a CPU server, the rest GPU types
that are faster, pricier, smaller in memory and poor at embedding look-ups.
"""

from __future__ import annotations

import numpy as np

from fedfleet.placement.catalog import DeviceCatalog, build_catalog
from fedfleet.placement.profile import LayerProfile, ModelProfile

_KINDS = ("dense", "conv", "embedding", "elementwise")


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def random_profile(num_layers: int, rng: np.random.Generator) -> ModelProfile:
    """A chain of ``num_layers`` layers with random sizes."""
    layers = []
    for index in range(num_layers):
        kind = str(rng.choice(_KINDS, p=[0.45, 0.3, 0.1, 0.15]))
        params = _log_uniform(rng, 1e8, 4e9) if kind == "embedding" else _log_uniform(rng, 1e4, 5e7)
        layers.append(LayerProfile(
            name=f"{index}:{kind}",
            kind=kind,
            flops=_log_uniform(rng, 1e5, 1e6) if kind == "embedding" else _log_uniform(rng, 1e6, 2e9),
            param_bytes=params,
            activation_bytes=_log_uniform(rng, 1e2, 3e5),
            sync_bytes=params / 1000 if kind == "embedding" else None,  # sparse rows touched
        ))
    return ModelProfile(name=f"random-{num_layers}", layers=tuple(layers))


def random_catalog(num_types: int, rng: np.random.Generator, batch_size: int = 256) -> DeviceCatalog:
    """One CPU type and ``num_types - 1`` GPU types; the target is left at its default."""
    devices = [dict(name="cpu", kind="cpu", count=int(rng.integers(4, 17)), flops=1e12,
                    memory_gb=256.0, price_per_hour=1.0, intra_gbps=10.0)]
    for index in range(1, num_types):
        speed = _log_uniform(rng, 5.0, 100.0)
        devices.append(dict(
            name=f"gpu{index}", kind="gpu", count=int(rng.integers(2, 13)), flops=1e12 * speed,
            memory_gb=float(rng.choice([16.0, 32.0, 40.0, 80.0])),
            price_per_hour=round(speed ** 0.7 * rng.uniform(0.5, 1.5), 2),
            intra_gbps=float(rng.choice([25.0, 100.0, 300.0])),
            efficiency={"embedding": round(rng.uniform(0.02, 0.2), 3),
                        "elementwise": round(rng.uniform(0.2, 0.6), 3)},
        ))
    names = [d["name"] for d in devices]
    links = [{"between": [a, b], "gbps": round(_log_uniform(rng, 5.0, 100.0), 1)}
             for i, a in enumerate(names) for b in names[i + 1:]]
    return build_catalog({"job": {"batch_size": batch_size}, "devices": devices, "links": links})


def with_reachable_target(profile: ModelProfile, catalog: DeviceCatalog, rng: np.random.Generator,
                          low: float = 0.3, high: float = 3.0) -> DeviceCatalog:
    """Set the throughput target to a random multiple of one fastest-GPU instance's rate."""
    seconds = []
    for device in catalog.devices:
        assert device.flops is not None
        seconds.append(sum(layer.flops / (device.flops * device.efficiency.get(layer.kind, 1.0))
                           for layer in profile.layers))
    return catalog.with_job(throughput_target=float(rng.uniform(low, high) / min(seconds)))
