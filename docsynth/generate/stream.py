"""The sample stream: document and background pools, then the compositor, then finished labels.

Sample ``i`` takes document ``(i // per_document) % D`` and draws everything else from
``sample_rng(seed, i)``: a pure function of the config and seed, made in memory. It is the one
way a composite is made: `docsynth generate` writes the stream's samples to disk, online
training converts them to tensors, `export-model` calibrates on them and `hardcases` photographs
them. The stream, not the compositor, finishes each sample's labels
(:func:`docsynth.generate.labels.finish_labels`), so every consumer sees the same labels.

A stream is built once in the parent process (pools listed, compositor options validated and
default-filled) and pickled to each worker.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.errors import DocsynthError
from docsynth.generate.labels import finish_labels
from docsynth.generate.pools import BackgroundPool, DocumentPool
from docsynth.kinds import Sample
from docsynth.schema import GenerateSection


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of sample ``index``: a pure function of (seed, index)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index])))


class SampleStream:
    """Samples addressed by index, made in memory (see the module docstring)."""

    def __init__(self, documents: DocumentPool, backgrounds: BackgroundPool, compositor: str,
                 compositor_options: dict[str, Any] | None, seed: int, per_document: int):
        self.documents = documents
        self.backgrounds = backgrounds
        self.compositor = compositor
        self.options = options_mod.build(plugins.get("compositor", compositor), compositor_options,
                                         "generate.compositor_options")
        self.seed = int(seed)
        self.per_document = int(per_document)

    @classmethod
    def from_config(cls, gen: GenerateSection, seed: int) -> SampleStream:
        """The stream of a ``generate`` section (its pools, compositor and ``per_document``)."""
        return cls(DocumentPool.from_config(gen, seed), BackgroundPool.from_config(gen, seed), gen.compositor,
                   gen.compositor_options, seed, gen.per_document)

    def render(self, index: int, skipped: dict[str, str] | None = None) -> tuple[Sample, dict[str, Any]] | None:
        """Sample ``index`` with its provenance (document source and id, background id); None
        when its document cannot be read. Each unreadable document or background goes into
        ``skipped`` (its file -> why)."""
        skipped = {} if skipped is None else skipped
        doc_index = (index // self.per_document) % len(self.documents)
        try:
            page = self.documents.load(doc_index)
        except DocsynthError as exc:
            skipped[_where(self.documents.refs[doc_index])] = str(exc)
            return None
        rng = sample_rng(self.seed, index)
        bg_index = int(rng.integers(len(self.backgrounds)))
        background = None
        # An unreadable background is replaced by the next one: deterministic, since decoding
        # the same file fails the same way in every worker.
        for attempt in range(len(self.backgrounds)):
            j = (bg_index + attempt) % len(self.backgrounds)
            try:
                background = self.backgrounds.load(j)
                bg_index = j
                break
            except DocsynthError as exc:
                skipped[_where(self.backgrounds.refs[j])] = str(exc)
                continue
        if background is None:
            raise DocsynthError("no readable background images; check generate.backgrounds / --backgrounds")
        compositor = plugins.get("compositor", self.compositor)
        try:
            sample = compositor.compose(page, background, rng, self.options)
        except DocsynthError:
            raise
        except Exception as exc:  # a plugin's bug: one line naming it, not its traceback
            raise DocsynthError(f"compositor {self.compositor!r} "
                                f"({plugins.host().describe('compositor', self.compositor)}) "
                                f"failed on sample {index}: {type(exc).__name__}: {exc}") from None
        doc_ref, bg_ref = self.documents.refs[doc_index], self.backgrounds.refs[bg_index]
        info = {"document": {"source": doc_ref.source, "id": doc_ref.id}, "background": bg_ref.id}
        return finish_labels(sample), info

    def sample(self, index: int) -> Sample | None:
        """Sample ``index`` alone; None when its document cannot be read."""
        made = self.render(index)
        return None if made is None else made[0]


def compose_one(compositor: str, page: Any, background: np.ndarray, rng: np.random.Generator,
                options: dict[str, Any] | None = None) -> Sample:
    """One sample as the stream makes it, from a page and background in hand (benchmarks,
    tests, notebooks): the options validated and default-filled, the labels finished."""
    plugin = plugins.get("compositor", compositor)
    built = options_mod.build(plugin, options, "generate.compositor_options")
    return finish_labels(plugin.compose(page, background, rng, built))


def _where(ref: Any) -> str:
    """A document or background as the user knows it: its file, else its id."""
    return str(ref.path) if getattr(ref, "path", None) else f"{getattr(ref, 'source', None) or ref.provider}:{ref.id}"
