"""Use a finished run: predict any images (``predictor``), serve it over HTTP (``api``), export it (``export``).

Above the pipelines, whose model-building code it reuses; below the commands that expose it.
"""
