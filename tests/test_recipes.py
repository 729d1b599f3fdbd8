"""The recipe a data option trains by default, and an epoch as a pass over the training images."""

import pytest
import torch
from omegaconf import OmegaConf

from siamese.data.datamodule import SiameseDataModule
from siamese.data.samplers import PKSampler, TripletSampler
from siamese.data.sources.synthetic import SyntheticGlyphs
from tests.helpers import CONF, SPLIT, options

REAL = {"folder": "data.root=x", "csv": "data.manifest=x", "torchvision": "data.name=MNIST"}
RECIPE = OmegaConf.load(CONF / "recipe" / "images.yaml")


def compose(make_config, *overrides):
    return make_config(*overrides, tiny=False)


def loss_of(cfg) -> str:
    return cfg.loss._target_.rsplit(".", 1)[1]


@pytest.mark.parametrize("data", sorted(REAL))
def test_real_data_options_train_the_images_recipe(make_config, data):
    cfg = compose(make_config, f"data={data}", REAL[data])
    assert loss_of(cfg) == "TripletBatchHardLoss"
    assert cfg.sampler._target_.endswith("PKSampler")
    assert cfg.data.image_size == RECIPE.data.image_size
    assert cfg.trainer.max_epochs == RECIPE.trainer.max_epochs
    assert cfg.data.steps_per_epoch is None  # an epoch is a pass over the training images
    affine = OmegaConf.load(CONF / "augmentation" / "affine.yaml")
    assert cfg.augmentation.shear == affine.shear and cfg.augmentation.rotation == affine.rotation
    assert cfg.evaluation.monitor == RECIPE.evaluation.monitor == "val/map_at_r"


def test_the_command_line_wins_over_the_recipe(make_config):
    real = ["data=csv", REAL["csv"]]
    cfg = compose(make_config, *real, "loss=contrastive", "data.image_size=48")
    assert loss_of(cfg) == "ContrastiveLoss" and cfg.sampler._target_.endswith("PairSampler")
    assert cfg.data.image_size == 48 and cfg.trainer.max_epochs == RECIPE.trainer.max_epochs
    assert compose(make_config, *real, "trainer.max_epochs=2").trainer.max_epochs == 2
    plain = compose(make_config, *real, "recipe=glyphs")  # the options' own defaults
    assert loss_of(plain) == "TripletLoss"
    assert plain.data.image_size == OmegaConf.load(CONF / "data" / "csv.yaml").image_size
    assert plain.trainer.max_epochs == OmegaConf.load(CONF / "trainer" / "cpu.yaml").max_epochs
    assert plain.augmentation.shear == 0.0 and plain.evaluation.monitor == "val/p_at_1"


@pytest.mark.parametrize(("experiment", "loss"), [("sprn", "TripletLoss"), ("sdrn", "SDRNLoss")])
def test_an_experiment_keeps_its_loss_on_real_data(make_config, experiment, loss):
    cfg = compose(make_config, "data=folder", REAL["folder"], f"experiment={experiment}")
    assert loss_of(cfg) == loss and cfg.backbone._target_.endswith("TwoBranch")
    assert cfg.name == experiment


def test_the_glyph_run_keeps_its_own_recipe(make_config):
    cfg = compose(make_config)
    assert loss_of(cfg) == "TripletLoss" and cfg.data.image_size == 32
    assert cfg.data.steps_per_epoch == 100 and cfg.trainer.max_epochs == 15
    images = compose(make_config, "recipe=images")
    assert loss_of(images) == "TripletBatchHardLoss"
    assert images.trainer.max_epochs == RECIPE.trainer.max_epochs


@pytest.mark.parametrize("recipe", options("recipe"))
def test_every_recipe_trains_a_step_on_real_images(make_config, recipe, tmp_path):
    from siamese.run.build import build
    from tests.helpers import write_glyph_folder

    write_glyph_folder(
        SyntheticGlyphs(num_classes=20, samples_per_class=6)(image_size=16), tmp_path
    )
    cfg = compose(
        make_config, "data=folder", f"data.root={tmp_path}", f"recipe={recipe}", "debug=fast"
    )
    datamodule, module = build(cfg)
    batch = next(iter(datamodule.train_dataloader()))
    assert torch.isfinite(module.loss(module.embed(batch["images"]), batch["labels"]).loss)


# --- an epoch -----------------------------------------------------------------------------------

GLYPHS = SyntheticGlyphs(num_classes=12, samples_per_class=7)  # 8 train classes: 56 images


def datamodule(sampler, steps_per_epoch=None, batch_size=4) -> SiameseDataModule:
    dm = SiameseDataModule(
        GLYPHS, 16, SPLIT, steps_per_epoch, batch_size=batch_size, sampler=sampler, eval_pairs=20
    )
    dm.setup()
    return dm


def test_an_epoch_is_one_pass_over_the_training_images_unless_set():
    triplets = datamodule(TripletSampler())
    n = len(triplets.splits["train"])
    assert n == 56
    assert len(triplets.train_dataloader()) == 5  # ceil(56 / (4 triplets × 3 images))
    assert triplets.train_steps(world_size=2) == 3  # each DDP rank draws its own batches
    pk = datamodule(PKSampler(samples_per_class=2), batch_size=8)
    assert len(pk.train_dataloader()) == 7  # ceil(56 / 8 images)
    assert len(datamodule(TripletSampler(), steps_per_epoch=11).train_dataloader()) == 11
    with pytest.raises(ValueError, match="^steps_per_epoch must be an integer >= 1, got 0"):
        datamodule(TripletSampler(), steps_per_epoch=0)


def test_pk_batches_repeat_classes_when_the_split_has_fewer_than_p():
    labels = torch.arange(3).repeat_interleave(5)  # 3 classes of 5
    g = torch.Generator().manual_seed(0)
    idx = PKSampler(samples_per_class=2).bind(labels, g).sample(16)  # P = 8 groups of 2
    groups = labels[idx[:, 0]].view(8, 2)
    assert (groups == groups[:, :1]).all()  # K of one class per group
    per_class = torch.bincount(groups[:, 0], minlength=3)
    assert sorted(per_class.tolist()) == [2, 3, 3]  # every class once before any twice
    # with enough classes the draw is what it always was: the first P of one permutation
    many = torch.arange(10).repeat_interleave(3)
    g = torch.Generator().manual_seed(4)
    idx = PKSampler(samples_per_class=2).bind(many, g).sample(8)
    expected = torch.randperm(10, generator=torch.Generator().manual_seed(4))[:4]
    assert torch.equal(many[idx[::2, 0]], expected)


# --- the stopping rule --------------------------------------------------------------------------


def test_early_stopping_ends_training_after_patience_validations_without_progress(
    make_config, tmp_path
):
    from pytorch_lightning.callbacks import EarlyStopping

    from siamese.config.checks import check_config
    from siamese.core.errors import ConfigValueError
    from siamese.run.build import build
    from siamese.run.trainer import make_trainer

    # weights that do not move (no normalization statistics either): val metrics never improve
    frozen = ["optimizer=sgd", "optimizer.lr=1e-30", "normalization=none", "logger=none"]
    cfg = make_config(*frozen, "trainer.max_epochs=4", "evaluation.patience=1")
    datamodule, module = build(cfg)
    trainer = make_trainer(cfg, tmp_path, datamodule)
    trainer.fit(module, datamodule)
    assert trainer.current_epoch == 2  # the first epoch sets the best, one more without progress
    off = make_config(*frozen)
    assert off.evaluation.patience is None  # off by default
    trainer = make_trainer(off, tmp_path / "b", build(off)[0])
    assert not any(isinstance(c, EarlyStopping) for c in trainer.callbacks)
    with pytest.raises(ConfigValueError, match="^evaluation.patience must be > 0, got 0"):
        check_config(make_config("evaluation.patience=0"))
