"""`python -m airlock.cli ...`: the same as the `airlock` command."""

import sys

from airlock.cli import main

sys.exit(main())
