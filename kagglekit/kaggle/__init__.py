"""Talking to Kaggle through the official ``kaggle`` client: credentials, retries, error messages,
download, submit and the local Kaggle service the tests (and courses) run against."""
