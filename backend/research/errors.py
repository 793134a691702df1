"""What a study's input can get wrong, each a message for the person who runs it (CLI exit 2)."""

from backend.errors import BackendError


class DataError(BackendError, ValueError):
    """An input file cannot be used; the message names the file and the problem."""


class SimulationError(BackendError, ValueError):
    """The protocol or data cannot be simulated; the message names the problem."""


class GridError(BackendError, ValueError):
    """A configuration cannot be used; the message names the entry, key and value."""
