"""docsynth: synthetic training data and models for document scanners."""

__version__ = "0.1.0"
