"""kagglekit: run image competitions on Kaggle end to end."""

__version__ = "0.1.0"
