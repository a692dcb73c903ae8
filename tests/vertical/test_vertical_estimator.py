"""The scikit-learn estimator contract of VerticalClassifier."""

from __future__ import annotations

from sklearn.base import clone

from fedfleet.vertical.attacks import Corruption
from fedfleet.vertical.trainer import VerticalClassifier


def test_clone_copies_parameters_without_fitted_state() -> None:
    est = VerticalClassifier(embedding_dim=8, lipschitz=None, epochs=2, random_state=3)
    est.model_ = object()
    copy = clone(est)
    assert copy is not est
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "model_")


def test_get_params_lists_every_constructor_argument() -> None:
    params = VerticalClassifier().get_params()
    assert params["embedding_dim"] == 16
    assert params["channel"] == "serializing"
    assert set(params) >= {"lipschitz", "epochs", "batch_size", "lr", "momentum", "corruption", "corrupt_party"}


def test_set_params_updates_and_rejects_unknown() -> None:
    est = VerticalClassifier().set_params(epochs=7, lr=0.1)
    assert (est.epochs, est.lr) == (7, 0.1)
    try:
        est.set_params(no_such_param=1)
    except ValueError as exc:
        assert "no_such_param" in str(exc)
    else:
        raise AssertionError("set_params accepted an unknown parameter")


def test_clone_keeps_corruption_setting() -> None:
    est = VerticalClassifier(corruption=Corruption(fraction=0.5, kind="zeros"), corrupt_party=1)
    assert clone(est).get_params()["corruption"] == Corruption(fraction=0.5, kind="zeros")
