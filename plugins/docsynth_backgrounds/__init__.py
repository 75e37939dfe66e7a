"""First-party docsynth plugins (docsynth_backgrounds); each module is its own entry point."""
