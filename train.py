"""Train a Siamese network: `python train.py [group=option ...]` (see README.md)."""

import hydra

from siamese.run.job import train


@hydra.main(version_base="1.3", config_path="pkg://siamese.conf", config_name="train")
def main(cfg) -> float:
    return train(cfg)


if __name__ == "__main__":
    main()
