"""One client, full participation, FedAvg: the engine must equal plain PyTorch SGD."""

import copy

import pytest
import torch
from torch import nn

from fedfleet.config import load_config
from fedfleet.data.datasets import load_dataset
from fedfleet.fl import FederatedData, run_simulation
from fedfleet.fl.sync_runner import task_seed
from fedfleet.models import build_model


@pytest.mark.parametrize(("model_name", "momentum", "rounds"), [("mlp", 0.0, 3), ("cnn", 0.9, 2)])
def test_single_client_fedavg_equals_plain_sgd(model_name, momentum, rounds):
    split = load_dataset("digits")
    client = split.train.subset(torch.arange(300))
    config = load_config({
        "seed": 5,
        "data": {"dataset": "digits", "num_clients": 1},
        "model": {"name": model_name},
        "train": {"rounds": rounds, "clients_per_round": 1, "batch_size": 32, "lr": 0.05,
                  "momentum": momentum, "weight_decay": 1e-4},
        "fleet": {"availability": 1.0},
        "checkpoint_every": 0,
    })
    torch.manual_seed(0)
    model = build_model(model_name, client.input_shape, 10)
    reference = copy.deepcopy(model)

    result = run_simulation(config, data=FederatedData([client], split.test), model=model)

    for round_index in range(1, rounds + 1):
        # Each round restarts local SGD (fresh momentum buffer) from the global model.
        optimizer = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=momentum, weight_decay=1e-4)
        generator = torch.Generator().manual_seed(task_seed(5, round_index, 0))
        for batch in torch.randperm(len(client), generator=generator).split(32):
            loss = nn.functional.cross_entropy(reference(client.x[batch]), client.y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    for ours, theirs in zip(result.model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
