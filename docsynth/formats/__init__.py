"""On-disk formats: manifest.jsonl rows, corners.csv, tar shards. One reader and one writer each."""
