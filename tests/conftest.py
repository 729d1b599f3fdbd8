"""Fixtures: compose the real config (Hydra's compose API) on tiny sizes."""

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from siamese.config.schemas import register
from tests.helpers import CONF, TINY


@pytest.fixture
def make_config():
    register()

    def make(*overrides: str, tiny: bool = True) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose("train", overrides=[*(TINY if tiny else []), *overrides])

    return make
