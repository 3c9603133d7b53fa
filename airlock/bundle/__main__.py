"""`python -m airlock.bundle ...`: the bundle commands on their own."""

import sys

from airlock.cli.bundle import main

sys.exit(main())
