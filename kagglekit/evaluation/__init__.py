"""Honest evaluation: cross-validation folds, the metric registry, and reports of what a model got right."""
