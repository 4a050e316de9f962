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


class KaggleError(KagglekitError):
    """A Kaggle API call failed; the message says the likely cause and the fix.

    ``transient`` errors (5xx, 429, timeouts, dropped connections) may succeed when retried;
    ``ambiguous`` ones may have taken effect on the service even though the call failed.
    """

    def __init__(self, message: str, *, status: int | None = None, transient: bool = False,
                 ambiguous: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.transient = transient
        self.ambiguous = ambiguous
        self.retry_after = retry_after
