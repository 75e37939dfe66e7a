"""First-party backbone plugins (docsynth_models); each module is its own entry point."""
