"""``python -m semid_studio.cli``."""

import sys

from . import main

sys.exit(main())
