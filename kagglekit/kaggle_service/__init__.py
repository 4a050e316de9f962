"""A local Kaggle service: the real ``kaggle`` client talks to it as it talks to kaggle.com.

It answers the ``kagglesdk`` RPCs kagglekit uses (``POST /api/v1/<Service>/<Method>`` with JSON built
from the very ``kagglesdk`` types the client parses), serves competition data as a resumable zip
(302 to a signed file URL, Range/ETag), takes resumable uploads (PUT, 308), scores submissions
asynchronously against a hidden solution split into public and private rows, enforces a daily
limit, and injects faults on demand. It also keeps datasets (datasets.py) and runs pushed notebooks
offline in a sandbox (kernels.py), which is what a code competition (hidden_test.py) scores.
``KAGGLE_API_ENVIRONMENT=TEST`` points the client at http://localhost:7777 (another port, as port 0 gives:
``KAGGLEKIT_LOCAL_KAGGLE_PORT``).
"""

from kagglekit.kaggle_service.faults import Fault, Faults
from kagglekit.kaggle_service.server import LocalKaggleService
from kagglekit.kaggle_service.state import (
    HostedCompetition,
    ServiceState,
    host_competition,
)

__all__ = ["Fault", "Faults", "HostedCompetition", "LocalKaggleService", "ServiceState", "host_competition"]
