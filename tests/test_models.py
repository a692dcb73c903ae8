"""The model registry builds plain modules with the right output shape."""

import pytest
import torch

from fedfleet.errors import ConfigError
from fedfleet.models import build_model


@pytest.mark.parametrize("name", ["mlp", "cnn", "lenet5"])
@pytest.mark.parametrize("input_shape", [(1, 28, 28), (1, 8, 8)])
def test_models_map_a_batch_to_class_logits(name, input_shape):
    model = build_model(name, input_shape, 10)
    assert isinstance(model, torch.nn.Module)
    assert model(torch.zeros(3, *input_shape)).shape == (3, 10)


def test_unknown_model_lists_the_choices():
    with pytest.raises(ConfigError, match="choose one of: cnn, lenet5, mlp"):
        build_model("resnet", (1, 28, 28), 10)
