"""CLI verbs, one module each; ``kagglekit.cli.COMMAND_MODULES`` lists them."""
