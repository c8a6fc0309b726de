"""Errors aelab raises for bad user input.

Every error a user can cause by what they type (a dataset name, a preset, a config key, a file) is an
:class:`AelabError`. Its message is one line that names the input, what was wrong and what is allowed.
The CLI prints it and exits with code 2.
"""

from __future__ import annotations


class AelabError(Exception):
    """Bad user input: one-line message, exit code 2 from the CLI."""


class DataError(AelabError):
    """A dataset that cannot be found, read, or is malformed."""


class ModelError(AelabError):
    """A model spec or preset that is unknown or does not fit the data."""


class ConfigError(AelabError):
    """A configuration value or key that is not allowed."""


class TrainingDivergedError(AelabError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
