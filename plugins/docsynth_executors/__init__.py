"""First-party docsynth plugins (docsynth_executors); each module is its own entry point."""
