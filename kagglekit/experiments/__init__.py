"""Experiments over many runs: the backbone x optimizer matrix (``compare``) and hyperparameter search on Ray
(``tune``). Each run inside one is an ordinary run: its own run directory and ledger row."""
