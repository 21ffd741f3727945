"""`python -m latte_cli ...` runs the `latte` command."""

import sys

from latte_cli import main

sys.exit(main())
