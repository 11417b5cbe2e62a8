"""`python -m headwater` is the `headwater` command."""

import sys

from .cli import main

sys.exit(main())
