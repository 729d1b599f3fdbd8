"""Train a Siamese network: `siamese train [group=option ...]`, or `python -m siamese.train`, or
`python train.py` in the project (see README.md). Hydra composes the configs the package carries
(`pkg://siamese.conf`), so any folder will do."""

import hydra

from siamese.run.job import train


@hydra.main(version_base="1.3", config_path="pkg://siamese.conf", config_name="train")
def main(cfg) -> float:
    return train(cfg)


if __name__ == "__main__":
    main()
