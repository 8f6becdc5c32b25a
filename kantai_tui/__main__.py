"""``python -m kantai_tui`` runs the CLI (also what torchrun will launch)."""

import sys

from kantai_tui.cli import main

sys.exit(main())
