"""Files shipped inside the package: the packaged scanner model (docsynth-cpu.pt) and its model card."""
