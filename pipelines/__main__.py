"""`python -m pipelines ...` is the same as the `synthgate` command."""

import sys

from pipelines.cli import entry

sys.exit(entry())
