"""`python -m tui.cli`: what the `swarmdeck` script runs (the daemon and SSH rooms use it)."""

import sys

from tui.cli import main

sys.exit(main())
