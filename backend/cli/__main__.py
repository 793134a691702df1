"""``python -m backend.cli``: the same as the `coding-backend` command."""

import sys

from backend.cli import main

sys.exit(main())
