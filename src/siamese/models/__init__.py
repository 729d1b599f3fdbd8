"""Encoders and backbones."""
