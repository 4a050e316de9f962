"""What the verbs, the Python API and notebooks do, below the command line: a run from a competition name and
options, recorded and submitted; predictions for any images; blends. Nothing here parses arguments."""
