"""User-facing errors: each names the file, row or setting at fault and how to fix it.

The CLI prints these as one line, without a traceback, and exits with the error's ``exit_code``:

====  ============================================================================
   0  success
   1  the command ran and its answer is "no" (``validate``: an invalid submission;
      ``submit``: Kaggle failed to score it)
   2  bad usage: a wrong option, config, competition name or destination (``ConfigError``;
      argparse's own usage errors too, a path argument that is not there among them)
   3  bad data: a competition folder, image or file that is not what it should be
      (``DataError``; also a file or folder that cannot be read or written:
      permission denied, missing, disk full)
   4  a submission file that does not match the competition (``SubmissionError``)
   5  the Kaggle API failed: credentials, rules not accepted, network (``KaggleError``)
   6  pretrained weights missing or unusable (``WeightsError``)
  70  an internal error (a bug): one line, the traceback goes to a crash log
 130  interrupted (Ctrl-C)
====  ============================================================================
"""

from __future__ import annotations

import errno

EXIT_INTERNAL = 70  # sysexits.h EX_SOFTWARE
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report


class KagglekitError(Exception):
    """Base of every error a user can act on."""

    exit_code = 2


class DataError(KagglekitError):
    """The competition folder or an image in it is not what the adapter declares."""

    exit_code = 3


class SubmissionError(KagglekitError):
    """A submission file does not match the competition's sample submission."""

    exit_code = 4


class WeightsError(KagglekitError):
    """Pretrained weights are missing or unusable (never fall back to random weights)."""

    exit_code = 6


class ConfigError(KagglekitError):
    """A run config, competition config, registry name, option value or destination is wrong."""

    exit_code = 2


class KaggleError(KagglekitError):
    """A Kaggle API call failed; the message says the likely cause and the fix.

    ``transient`` errors (5xx, 429, timeouts, dropped connections) may succeed when retried;
    ``ambiguous`` ones may have taken effect on the service even though the call failed.
    """

    exit_code = 5

    def __init__(self, message: str, *, status: int | None = None, transient: bool = False,
                 ambiguous: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.transient = transient
        self.ambiguous = ambiguous
        self.retry_after = retry_after


#: OSErrors about a path the user chose, and what to do about each.
_PATH_ADVICE = {
    PermissionError: "check its permissions or choose another path",
    FileNotFoundError: "check the path",
    IsADirectoryError: "a file was expected here, not a folder",
    NotADirectoryError: "a folder was expected here, not a file",
    FileExistsError: "move it away or choose another path",
}
_DISK_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space or choose a folder on another disk",
    errno.EDQUOT: "the disk quota is used up: free some space or choose a folder on another disk",
    errno.EROFS: "the file system is read-only: choose a writable folder",
    errno.EFBIG: "the file is too large for this file system: choose a folder on another disk",
}


def path_error_message(exc: OSError) -> str | None:
    """A one-line explanation of an OSError about a user's file or disk; None for any other OSError.

    Network errors (also OSErrors) and errors without a path or a disk cause are not the user's to fix
    from the message, so they stay internal errors.
    """
    advice = _DISK_ADVICE.get(exc.errno) or next(
        (text for kind, text in _PATH_ADVICE.items() if isinstance(exc, kind)), None)
    if advice is None:
        return None
    if exc.filename is None:
        return f"{exc.strerror or exc} ({advice})" if exc.errno in _DISK_ADVICE else str(exc) or advice
    where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else str(exc.filename)
    return f"{where}: {exc.strerror or type(exc).__name__} ({advice})"
