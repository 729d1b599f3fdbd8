"""Data: in-memory image sets, class splits, tuple samplers and the LightningDataModule.

The names are imported on first use, so that `siamese.data.images` (decoding files for an exported
model) does not pull Lightning in with the data module."""

import importlib

_WHERE = {
    "ImageSet": "siamese.data.imageset",
    "PKSampler": "siamese.data.samplers",
    "PairSampler": "siamese.data.samplers",
    "SiameseDataModule": "siamese.data.datamodule",
    "SyntheticGlyphs": "siamese.data.synthetic",
    "TripletSampler": "siamese.data.samplers",
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'siamese.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


__all__ = sorted(_WHERE)
