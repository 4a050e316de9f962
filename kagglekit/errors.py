"""User-facing errors: each names the file, row or setting at fault and how to fix it.

The CLI prints these without a traceback; anything else is a bug and keeps its traceback.
"""


class KagglekitError(Exception):
    """Base of every error a user can act on."""


class DataError(KagglekitError):
    """The competition folder or an image in it is not what the adapter declares."""


class SubmissionError(KagglekitError):
    """A submission file does not match the competition's sample submission."""


class WeightsError(KagglekitError):
    """Pretrained weights are missing or unusable (never fall back to random weights)."""


class ConfigError(KagglekitError):
    """A run config, competition config or registry name is wrong."""
