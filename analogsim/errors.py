"""One exception tree for everything a user can get wrong or a run can hit.

Every error carries a one-line message naming the file, the field and what is allowed;
the CLI prints ``str(err)`` alone (no traceback) and exits non-zero.
"""

from __future__ import annotations


class AnalogsimError(Exception):
    """Base of every error analogsim raises on purpose."""


class ConfigError(AnalogsimError):
    """A YAML file (device profile, scenario) is missing, unreadable or invalid."""


class ProfileError(ConfigError):
    """A device profile is invalid."""


class ScenarioError(ConfigError):
    """A scenario is invalid."""


class DataError(AnalogsimError):
    """A dataset is missing, truncated, corrupt or unknown."""


class HardwareError(AnalogsimError):
    """A request that the simulated hardware cannot serve (e.g. a clean pass on a noisy chip)."""


class DivergenceError(AnalogsimError):
    """Training diverged: NaN/Inf or exploding values in weights, loss or decorrelation matrices.

    Attributes:
        step: the training step (0-based, counted by the guard) at which divergence was seen.
        what: which quantity diverged ("loss", "weights" or "decorrelation").
    """

    def __init__(self, step: int, what: str) -> None:
        super().__init__(f"training diverged at step {step}: non-finite or exploding {what}")
        self.step = step
        self.what = what


def error_lines(err: BaseException) -> str:
    """``err`` as the CLI prints it: ``error: `` before each of its lines (one per problem)."""
    return "\n".join(f"error: {line}" for line in str(err).splitlines() or [""])
