"""`python -m airlock.bundle ...`: the bundle commands on their own."""

import sys

from airlock.bundle.cli import main

sys.exit(main())
