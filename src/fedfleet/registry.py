"""Name → builder registries, so configs can refer to components by string."""

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from fedfleet.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to builders with a helpful error for unknown names.

    Parameters
    ----------
    kind : str
        What the registry holds ("model", "strategy", ...), used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``builder`` under ``name``."""

        def decorate(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._builders[name] = builder
            return builder

        return decorate

    def get(self, name: str) -> Callable[..., T]:
        """Return the builder for ``name`` or raise a ConfigError listing the choices."""
        try:
            return self._builders[name]
        except KeyError:
            choices = ", ".join(sorted(self._builders))
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of: {choices}") from None

    def build(self, name: str, *args: object, **kwargs: object) -> T:
        """Build the component registered as ``name``."""
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
