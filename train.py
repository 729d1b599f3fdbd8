"""Train a Siamese network: `python train.py [group=option ...]` (see README.md); the same as
`siamese train` and `python -m siamese.train`."""

from siamese.train import main

if __name__ == "__main__":
    main()
