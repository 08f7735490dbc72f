"""``python -m bot``: the same as the ``confidant`` console script."""

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main())
