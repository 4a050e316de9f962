"""Self-contained Kaggle notebooks generated from a run: the run's report, and code that reproduces
its submission offline from attached inputs (see generate.py)."""
