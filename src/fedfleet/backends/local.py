"""Sequential in-process execution: one working model trains every client in turn."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from fedfleet.data.datasets import ArrayDataset
from fedfleet.fl.client import LocalTrainer
from fedfleet.fl.messages import ClientUpdate, TrainTask


class LocalBackend:
    """Runs tasks one after another in this process.

    Parameters
    ----------
    trainer : LocalTrainer
        Holds the single reusable working model.
    client_data : list of ArrayDataset
        Indexed by client id.
    """

    def __init__(self, trainer: LocalTrainer, client_data: Sequence[ArrayDataset]) -> None:
        self.trainer = trainer
        self.client_data = client_data

    def run(self, tasks: Sequence[TrainTask]) -> list[ClientUpdate]:
        return [self.trainer.train(task, self.client_data[task.client_id]) for task in tasks]

    def close(self) -> None:
        """Nothing to release: training ran in this process."""

    def set_model(self, model: nn.Module) -> None:
        self.trainer = LocalTrainer(model, self.trainer.loss_fn)
