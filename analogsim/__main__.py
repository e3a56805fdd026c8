"""``python -m analogsim``: the command line (``analogsim --help``)."""

import sys

from analogsim.cli import main

sys.exit(main())
