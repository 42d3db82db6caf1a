"""``python -m alchemiser.cli``: the ``alchemiser`` command, run as a module."""

import sys

from alchemiser.cli.main import main

sys.exit(main())
