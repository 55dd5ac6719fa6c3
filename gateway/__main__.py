"""``python -m gateway``: the same as ``krakenwatch gateway``."""

import sys

from .cli import main

sys.exit(main())
