"""Scanning: the model contract (checkpoints, pre/post-processing), backends and scanner, the classical scanner, export-model."""
