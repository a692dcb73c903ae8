"""Execution backends for client training."""

from fedfleet.backends.local import LocalBackend

__all__ = ["LocalBackend"]
