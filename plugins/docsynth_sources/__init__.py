"""First-party docsynth plugins (docsynth_sources); each module is its own entry point."""
