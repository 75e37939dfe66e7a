"""Plugin hook specifications.

Every hook receives a ``register`` callback and calls it once per object it provides
(the style of simonw/llm). The core keeps the registry; see :mod:`docsynth.plugins`.
The protocols the registered objects follow live in :mod:`docsynth.kinds`.
"""

import pluggy

hookspec = pluggy.HookspecMarker("docsynth")
hookimpl = pluggy.HookimplMarker("docsynth")


@hookspec
def register_sources(register):
    """Register dataset sources: ``register(source)`` with a :class:`docsynth.kinds.Source`."""


@hookspec
def register_backgrounds(register):
    """Register background providers: ``register(provider)`` with a :class:`docsynth.kinds.BackgroundProvider`."""


@hookspec
def register_mask_strategies(register):
    """Register mask strategies: ``register(strategy)`` with a :class:`docsynth.kinds.MaskStrategy`."""


@hookspec
def register_compositors(register):
    """Register compositors: ``register(compositor)`` with a :class:`docsynth.kinds.Compositor`."""


@hookspec
def register_backbones(register):
    """Register model backbones: ``register(backbone)`` with a :class:`docsynth.kinds.Backbone`."""


@hookspec
def register_postprocessors(register):
    """Register scan post-processors: ``register(post)`` with a :class:`docsynth.kinds.PostProcessor`."""


@hookspec
def register_executors(register):
    """Register executors that run shards of work: ``register(executor)`` with a :class:`docsynth.kinds.Executor`."""


@hookspec
def register_commands(cli):
    """Add commands to the CLI: ``cli`` is the root :class:`typer.Typer` app."""
