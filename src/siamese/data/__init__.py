"""Data: in-memory image sets, class splits, tuple samplers and the LightningDataModule."""

from siamese.data.datamodule import SiameseDataModule
from siamese.data.imageset import ImageSet
from siamese.data.samplers import PairSampler, PKSampler, TripletSampler
from siamese.data.synthetic import SyntheticGlyphs

__all__ = [
    "ImageSet",
    "PKSampler",
    "PairSampler",
    "SiameseDataModule",
    "SyntheticGlyphs",
    "TripletSampler",
]
