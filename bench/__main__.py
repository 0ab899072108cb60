"""``python -m bench ...`` runs the ``edgebench`` command line."""

import sys

from bench.cli import main

sys.exit(main())
