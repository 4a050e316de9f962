"""Competition adapters: one module (or YAML file) per competition, found by name.

A module here registers a ``kagglekit.competition.Competition``; a ``*.yaml`` file here defines a
generic one (``kind: class-folder``). Extra folders of YAML adapters can be named in
``$KAGGLEKIT_COMPETITIONS``.
"""
