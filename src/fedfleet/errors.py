"""Exception types. Every user-facing error carries a one-line message saying what and what to do."""


class FedfleetError(Exception):
    """Base class for errors the CLI reports as a single line with exit code 2."""


class ConfigError(FedfleetError):
    """A configuration key is unknown or its value is invalid."""


class DataError(FedfleetError):
    """A data set is missing, truncated, corrupt or has the wrong shape."""


class UpdateRejected(FedfleetError):
    """A client update failed validation and was not aggregated."""


class CheckpointError(FedfleetError):
    """A checkpoint is missing or cannot be read."""
