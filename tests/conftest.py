"""Shared helpers: compose the real config (Hydra's compose API) on tiny sizes."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from siamese.config import register

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# small enough for a CPU test in seconds, large enough for every metric to be defined
TINY = [
    "data.source.num_classes=20",
    "data.source.samples_per_class=6",
    "data.image_size=16",
    "data.batch_size=8",
    "data.steps_per_epoch=3",
    "data.eval_pairs=60",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "evaluation.one_shot_ways=[3]",
    "evaluation.one_shot_trials=20",
]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.fixture
def make_config():
    register()

    def make(*overrides: str, tiny: bool = True) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose("train", overrides=[*(TINY if tiny else []), *overrides])

    return make
