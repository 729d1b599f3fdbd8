"""Evaluation metrics: verification on pairs, retrieval, N-way one-shot (docs/design.md)."""

from siamese.metrics.oneshot import one_shot_accuracy
from siamese.metrics.retrieval import retrieval_metrics
from siamese.metrics.verification import (
    accuracy_at,
    choose_threshold,
    equal_error_rate,
    roc_auc,
    verification_metrics,
)

__all__ = [
    "accuracy_at",
    "choose_threshold",
    "equal_error_rate",
    "one_shot_accuracy",
    "retrieval_metrics",
    "roc_auc",
    "verification_metrics",
]
