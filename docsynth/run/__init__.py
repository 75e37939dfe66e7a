"""``docsynth run``: the stage engine (records, keys, lock), config checks and stage adapters."""
