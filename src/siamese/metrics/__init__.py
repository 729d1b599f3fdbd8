"""Evaluation metrics: verification on pairs, retrieval, N-way one-shot (docs/design.md)."""

from siamese.metrics.oneshot import one_shot_accuracy
from siamese.metrics.retrieval import retrieval_metrics
from siamese.metrics.verification import (
    DEFAULT_FMR_TARGETS,
    accuracy_at,
    choose_threshold,
    equal_error_rate,
    fmr_key,
    fmr_thresholds,
    fnmr_at_fmr,
    roc_auc,
    threshold_at_fmr,
    verification_metrics,
)

__all__ = [
    "DEFAULT_FMR_TARGETS",
    "accuracy_at",
    "choose_threshold",
    "equal_error_rate",
    "fmr_key",
    "fmr_thresholds",
    "fnmr_at_fmr",
    "one_shot_accuracy",
    "retrieval_metrics",
    "roc_auc",
    "threshold_at_fmr",
    "verification_metrics",
]
