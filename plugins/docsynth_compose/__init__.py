"""First-party docsynth plugins (docsynth_compose); each module is its own entry point."""
