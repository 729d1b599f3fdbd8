"""Checkpoints of earlier runs still load: their stored configs (classes that moved, a
normalization name, an augmentation preset, a partial sampler, source keys written twice) are read
in today's layout, and the model embeds as it did.

tests/data/checkpoint-8c5c562.ckpt was written by the code of commit 8c5c562 (before the layout by
stage): an SDRN pair model on a grey image folder with group norm and the strong augmentation
(hflip 0), its weights drawn at random, plus the embeddings and the augmented batch that code
computed for fixed images."""

import torch
from omegaconf import OmegaConf

from siamese.run.build import build_datamodule
from siamese.run.checkpoint import CONFIG_KEY, read_checkpoint
from siamese.run.restore import load_checkpoint
from tests.helpers import ROOT, write_glyph_folder

OLD = ROOT / "tests" / "data" / "checkpoint-8c5c562.ckpt"


def test_an_earlier_layout_reads_as_today_s():
    config = read_checkpoint(OLD)[CONFIG_KEY]
    assert config["model"]["_target_"] == "siamese.models.lightning.PairSiameseModule"
    assert config["loss"]["_target_"] == "siamese.losses.sdrn.SDRNLoss"
    assert config["normalization"] == {
        "_target_": "siamese.models.normalization.GroupNorm",
        "max_groups": 8,
    }
    assert "normalization" not in config["backbone"]
    assert config["sampler"] == {
        "_target_": "siamese.data.samplers.PairSampler",
        "positive_fraction": 0.5,
    }
    assert config["augmentation"]["rotation"] == 15.0 and config["augmentation"]["hflip"] == 0.0
    assert config["data"]["source"] == {"_target_": "siamese.data.sources.folder.ImageFolder"}
    assert config["data"]["root"] == "/gone" and config["data"]["resize"] == "crop"


def test_an_earlier_checkpoint_embeds_and_augments_as_it_did():
    expected = torch.load(OLD, weights_only=False)["expected"]
    module, cfg = load_checkpoint(OLD)
    with torch.no_grad():
        got = module.embed(expected["images"])
    assert torch.allclose(got, expected["embeddings"], atol=1e-5)
    assert float(module.threshold) == 1.25
    augmented = module.augment(expected["images"][:, None], torch.Generator().manual_seed(2))
    assert torch.equal(augmented, expected["augmented"])


def test_an_earlier_checkpoint_s_data_rebuilds(tmp_path):
    from siamese.data.sources.synthetic import SyntheticGlyphs

    _, cfg = load_checkpoint(OLD)
    glyphs = SyntheticGlyphs(num_classes=10, samples_per_class=4)(image_size=16, channels=1)
    write_glyph_folder(glyphs, tmp_path)
    data = OmegaConf.merge(cfg.data, {"root": str(tmp_path)})
    datamodule = build_datamodule(data)
    assert datamodule.splits["train"].images.shape[1:] == (1, 16, 16)
    assert datamodule.resize == "crop"
