"""kagglekit's shipped competition adapters: one Python module or YAML file per competition.

Installed as ``kagglekit_competitions`` (not a generic top-level name) and found through the
``kagglekit.competitions`` entry point: a module here registers a competition with
``kagglekit.competitions.discovery.COMPETITIONS``; a ``*.yaml`` file here configures a generic kind
(``kind: class-folder`` or ``kind: segmentation-folder``) with no Python at all.
"""
