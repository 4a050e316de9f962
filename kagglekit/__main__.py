import sys

from kagglekit.cli import main

sys.exit(main())
