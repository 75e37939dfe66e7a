"""First-party scan post-processors (docsynth_scan); each plugin module is its own entry point.

``lines`` is a helper module shared by them (robust line fits, side intersections, the quad fit
on a probability map); it registers nothing.
"""
