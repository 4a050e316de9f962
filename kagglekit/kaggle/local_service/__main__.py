"""``python -m kagglekit.kaggle.local_service COMPETITION --source DIR --users FILE``."""

import sys

from kagglekit.cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
