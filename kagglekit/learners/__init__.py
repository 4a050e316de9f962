"""Trainable objects with ``fit`` / ``predict`` / ``load``: heads, fine-tuned blocks, thresholds, segmenters."""
