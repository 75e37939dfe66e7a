"""``docsynth generate``: input pools, sharded sample generation, label finishing, option preflight."""
