"""`python -m siamese COMMAND ...`: the same as the `siamese` command (siamese.cli)."""

import sys

from siamese.cli import main

if __name__ == "__main__":
    sys.exit(main())
