"""Scoring quads on real photos: the SmartDoc protocol, the evaluate command's work, the hard-case benchmark."""
