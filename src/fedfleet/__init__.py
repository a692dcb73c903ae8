"""fedfleet: federated and privacy-preserving learning across heterogeneous fleets."""

from fedfleet.errors import ConfigError, DataError, FedfleetError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "FedfleetError", "__version__"]
