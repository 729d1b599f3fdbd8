"""`python -m siamese.compare [--trials 50] [--seeds 5] [OVERRIDE ...]` (see siamese.compare.run)."""

import sys

from siamese.compare.run import main

if __name__ == "__main__":
    sys.exit(main())
