"""Working with a generated dataset: split, export, preview, stats."""
