"""Talking to Kaggle through the official ``kaggle`` client: credentials, retries, error messages,
download, submit, datasets, kernels (the local service it can talk to instead is ``kagglekit.kaggle_service``)."""
