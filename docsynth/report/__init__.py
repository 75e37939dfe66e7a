"""``docsynth report``: one self-contained HTML page for a run folder."""
