"""Data: image sets held as tensors, class splits, tuple samplers, batches and the data module."""
