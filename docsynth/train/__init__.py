"""Training: datasets (fixed and online), the training loop, losses and metrics."""
