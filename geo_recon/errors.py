"""Errors a user can act on.

Anything raised as a ``GeoReconError`` is printed by the CLI as one clear line
(no traceback) and mapped to exit code 2 ("could not decide"). Messages name the
file, field, host, port or component involved.
"""


class GeoReconError(Exception):
    """A problem with input or environment that the user can fix."""

    exit_code = 2


class ConfigError(GeoReconError):
    """Bad user input: a scenario, a clusters file, an option."""


class EnvironmentProblem(GeoReconError):
    """The machine lacks something: Java, root, a free port, a download."""


class LabError(GeoReconError):
    """A lab could not be started, inspected or stopped."""


class FaultError(LabError):
    """A fault could not be injected, did not take effect, or could not be healed."""
