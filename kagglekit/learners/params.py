"""scikit-learn's ``get_params``: a learner's constructor arguments, read back from its attributes.

Each learner keeps every constructor argument as the attribute of the same name (scikit-learn's convention),
so ``type(learner)(**learner.get_params())`` builds the same unfitted learner: what a test compares with the
config a pipeline unpacked, and what a notebook prints to see a learner's hyperparameters.
"""

from __future__ import annotations

import inspect


class Params:
    """``get_params()`` for a class whose ``__init__`` arguments are all kept as attributes of their names."""

    def get_params(self) -> dict:
        signature = inspect.signature(type(self).__init__)
        return {name: getattr(self, name) for name in signature.parameters if name != "self"}
