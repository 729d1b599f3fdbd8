"""Losses of the Siamese models: one signature, forward(embeddings (B, T, D), labels (B, T))."""

from siamese.losses.base import LossOutput, SiameseLoss
from siamese.losses.contrastive import ContrastiveLoss
from siamese.losses.koch import KochLoss
from siamese.losses.mined import (
    ContrastiveAllPairsLoss,
    TripletBatchAllLoss,
    TripletBatchHardLoss,
    TripletSemiHardLoss,
)
from siamese.losses.sdrn import SDRNLoss
from siamese.losses.triplet import TripletLoss

__all__ = [
    "ContrastiveAllPairsLoss",
    "ContrastiveLoss",
    "KochLoss",
    "LossOutput",
    "SDRNLoss",
    "SiameseLoss",
    "TripletBatchAllLoss",
    "TripletBatchHardLoss",
    "TripletLoss",
    "TripletSemiHardLoss",
]
