"""The backend a run's ``backend`` config section names."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from fedfleet.backends.local import LocalBackend
from fedfleet.backends.ray_backend import RayBackend
from fedfleet.backends.vectorized import VectorizedBackend
from fedfleet.backends.workers import WorkerBackend, resolve_workers
from fedfleet.config import BackendConfig
from fedfleet.data.datasets import ArrayDataset
from fedfleet.fl.backend import Backend
from fedfleet.fl.client import LocalTrainer


def build_backend(config: BackendConfig, model: nn.Module, client_data: Sequence[ArrayDataset]) -> Backend:
    """The backend ``config`` names, training copies of ``model`` on ``client_data`` (indexed by client id).

    ``workers`` of 2 or more (``auto``: one per core this process may use) trains a round's tasks on that
    many forked processes; 1 trains them one after another here. ``name: ray`` trains them on that many
    Ray actors, here or on the cluster at ``address``. All give the same updates. ``vectorize`` trains a
    round's clients at once in this process (equal to the others up to float rounding), handing what it
    does not support to the backend above (on ``local``, one process).
    """
    trainer = LocalTrainer(model)
    workers = resolve_workers(config.workers)
    backend: Backend
    if config.name == "ray":
        backend = RayBackend(trainer, client_data, workers, config.address, config.threads)
    elif workers >= 2 and not config.vectorize:
        backend = WorkerBackend(trainer, client_data, workers, config.threads)
    else:
        backend = LocalBackend(trainer, client_data)
    if config.vectorize:
        return VectorizedBackend(trainer, client_data, fallback=backend)
    return backend
