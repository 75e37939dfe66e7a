"""Document sources: the store of fetched datasets, downloads, and ``prepare`` (a seeded mix of pages)."""
