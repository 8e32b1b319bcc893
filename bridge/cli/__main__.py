"""`python -m linebridge.cli` runs the command line."""

import sys

from linebridge.cli.main import main

sys.exit(main())
