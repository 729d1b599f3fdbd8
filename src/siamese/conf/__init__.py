"""The Hydra configs: one folder per config group, one YAML per option (found as pkg://siamese.conf)."""
