"""Plugin loading and the registry of everything plugins provide.

Built-in plugins and third-party ones load through the same entry-point group, ``docsynth``.
Environment variables choose what loads:

- ``DOCSYNTH_LOAD_PLUGINS``: comma list of plugin (entry-point) names or distribution names;
  when set, only these load (``docsynth`` alone loads just the built-ins; empty loads nothing).
- ``DOCSYNTH_DISABLE_PLUGINS``: comma list of plugin or distribution names to skip.

A plugin that fails to import or to register is recorded and reported, never fatal.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import pluggy
from typer.main import get_command_name

from docsynth import hookspecs
from docsynth.errors import DocsynthError
from docsynth.kinds import HOOK_KINDS, KINDS

GROUP = "docsynth"


@dataclass
class PluginInfo:
    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "hooks": sorted(self.hooks),
            "provides": {k: sorted(v) for k, v in sorted(self.provides.items())},
            "errors": self.errors,
        }


class Host:
    """The plugin manager plus the registry filled from its hooks."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.registry: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        self.owner: dict[tuple[str, str], str] = {}
        self._collected = False
        self._reported = False

    # -- loading ---------------------------------------------------------------------------

    def load_entry_points(self) -> None:
        allow = _env_list("DOCSYNTH_LOAD_PLUGINS")
        deny = _env_list("DOCSYNTH_DISABLE_PLUGINS") or set()
        found = list(md.entry_points(group=GROUP))
        # name and version of each distribution, its metadata parsed once (each ``dist.name``
        # parses it again: 80 parses were a tenth of every command's start-up)
        facts: dict[int, tuple[str, str]] = {}
        for ep in found:
            if ep.dist is not None and id(ep.dist) not in facts:
                meta = ep.dist.metadata
                facts[id(ep.dist)] = (meta["Name"], meta["Version"])
        for ep in sorted(found, key=lambda ep: (0 if facts.get(id(ep.dist), ("",))[0] == "docsynth" else 1, ep.name)):
            dist, version = facts.get(id(ep.dist), (None, None))
            keys = {ep.name, dist} - {None}
            if allow is not None and not keys & allow:
                continue
            if keys & deny:
                continue
            if ep.name in self.infos:  # built-ins load first, so the built-in keeps its name
                first = self.infos[ep.name]
                first.errors.append(f"another plugin named {ep.name!r} (distribution {dist}) was not loaded; "
                                    f"this one ({first.distribution}) is used")
                continue
            info = PluginInfo(ep.name, dist, version, ep.value)
            self.infos[ep.name] = info
            try:
                module = ep.load()
                self.pm.register(module, name=ep.name)
            except Exception as exc:  # a broken plugin must not break the CLI
                info.errors.append(f"failed to load: {type(exc).__name__}: {exc}")

    def add(self, plugin: Any, name: str, distribution: str | None = None) -> None:
        """Register a plugin object directly (tests, embedding)."""
        self.infos[name] = PluginInfo(name, distribution, None, getattr(plugin, "__name__", None))
        self.pm.register(plugin, name=name)
        self._collected = False

    # -- registry --------------------------------------------------------------------------

    def collect(self) -> None:
        if self._collected:
            return
        self._collected = True
        self.registry = {kind: {} for kind in KINDS}
        self.owner = {}
        for info in self.infos.values():
            info.hooks, info.provides = [], {}
        for hook_name, kind in HOOK_KINDS.items():
            caller = getattr(self.pm.hook, hook_name)
            # Call each implementation on its own, in registration order (pluggy lists them so;
            # it *calls* them in reverse), so built-ins register first, one broken plugin cannot
            # hide the others and every object is traced to its plugin.
            for impl in caller.get_hookimpls():
                info = self._info(impl.plugin_name)
                info.hooks.append(hook_name)
                try:
                    impl.function(register=self._registrar(kind, info))
                except Exception as exc:
                    info.errors.append(f"{hook_name} failed: {type(exc).__name__}: {exc}")
        for impl in self.pm.hook.register_commands.get_hookimpls():
            self._info(impl.plugin_name).hooks.append("register_commands")

    def _info(self, plugin_name: str) -> PluginInfo:
        return self.infos.setdefault(plugin_name, PluginInfo(plugin_name))

    def _registrar(self, kind: str, info: PluginInfo):
        protocol = KINDS[kind]

        def register(obj: Any) -> None:
            name = getattr(obj, "name", None)
            if not isinstance(name, str) or not name:
                raise TypeError(f"registered {kind} has no 'name'")
            if not isinstance(obj, protocol):
                missing = [a for a in _protocol_attrs(protocol) if not hasattr(obj, a)]
                raise TypeError(f"{kind} {name!r} lacks {', '.join(missing)}")
            if name in self.registry[kind]:
                other = self._info(self.owner[(kind, name)])
                # A built-in always keeps its name, so an installed package cannot silently
                # change what `compositor: realistic` means; otherwise the first one stays.
                if not (_is_builtin(info) and not _is_builtin(other)):
                    info.errors.append(_clash(kind, name, keep=other, drop=info))
                    return
                other.errors.append(_clash(kind, name, keep=info, drop=other))
                other.provides[kind].remove(name)
            if kind in GUARDED_KINDS and not _is_builtin(info):
                obj = Guarded(obj, f"{kind} {name!r} (plugin {info.name!r}, distribution {info.distribution})")
            self.registry[kind][name] = obj
            self.owner[(kind, name)] = info.name
            info.provides.setdefault(kind, []).append(name)

        return register

    def get(self, kind: str, name: str) -> Any:
        self.collect()
        try:
            return self.registry[kind][name]
        except KeyError:
            known = ", ".join(sorted(self.registry[kind])) or "none"
            raise DocsynthError(f"unknown {kind} {name!r}; known: {known}") from None

    def describe(self, kind: str, name: str) -> str:
        """Who provides ``name``: "plugin 'x', distribution y", for messages."""
        self.collect()
        info = self.infos.get(self.owner.get((kind, name), ""))
        return "unknown plugin" if info is None else f"plugin {info.name!r}, distribution {info.distribution}"

    def names(self, kind: str) -> list[str]:
        self.collect()
        return sorted(self.registry[kind])

    def all(self, kind: str) -> dict[str, Any]:
        self.collect()
        return dict(sorted(self.registry[kind].items()))

    def plugins(self) -> list[PluginInfo]:
        self.collect()
        return sorted(self.infos.values(), key=lambda i: i.name)

    def add_commands(self, cli: Any) -> None:
        """Let plugins add commands to ``cli``. A plugin may only add: a command whose name is
        taken (a built-in's or an earlier plugin's) is dropped with a warning, and the commands
        registered before it are put back if the plugin removed or replaced them."""
        owners: dict[str | None, str] = {}  # command name -> plugin that added it
        for impl in self.pm.hook.register_commands.get_hookimpls():
            info = self._info(impl.plugin_name)
            before_cmds, before_groups = list(cli.registered_commands), list(cli.registered_groups)
            taken = {_command_name(c) for c in before_cmds + before_groups} - {None}
            try:
                impl.function(cli=cli)
            except Exception as exc:
                info.errors.append(f"register_commands failed: {type(exc).__name__}: {exc}")
            for attr, before in (("registered_commands", before_cmds), ("registered_groups", before_groups)):
                now = getattr(cli, attr)
                if any(a is not b for a, b in zip(now, before, strict=False)) or len(now) < len(before):
                    info.errors.append("register_commands changed existing commands; they were restored")
                added = [c for c in now if not any(c is b for b in before)]
                kept = []
                for command in added:
                    name = _command_name(command)
                    if name in taken:
                        owner = f"plugin {owners[name]!r}" if name in owners else "docsynth"
                        info.errors.append(f"command {name!r} is already provided by {owner}; this plugin's "
                                           f"{name!r} was not added")
                        continue
                    taken.add(name)
                    owners[name] = info.name
                    kept.append(command)
                setattr(cli, attr, before + kept)

    def report_errors(self) -> None:
        """Print each plugin problem once on stderr."""
        if self._reported:
            return
        self.collect()
        self._reported = True
        for info in self.infos.values():
            for err in info.errors:
                print(f"docsynth: plugin {info.name}: {err}", file=sys.stderr)


# Kinds whose third-party implementations are called through :class:`Guarded`. (Compositors,
# executors and the others are already called where a failure becomes one line naming them.)
GUARDED_KINDS = ("source", "background")


class Guarded:
    """A third-party plugin object whose methods turn an unexpected exception (a bug in the
    plugin) into one line naming the plugin, its distribution, the method and the error, and
    exit status 1, instead of a traceback. Attributes pass through unchanged."""

    def __init__(self, obj: Any, who: str) -> None:
        self._obj, self._who = obj, who

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr in ("_obj", "_who"):  # copy/pickle probe before __init__
            raise AttributeError(attr)
        value = getattr(self._obj, attr)
        if not callable(value) or isinstance(value, type):
            return value
        who = self._who

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return value(*args, **kwargs)
            except DocsynthError:
                raise
            except Exception as exc:
                raise DocsynthError(f"{who} failed in {attr}: {type(exc).__name__}: {exc}; report it to the "
                                    "plugin's authors, or disable it with DOCSYNTH_DISABLE_PLUGINS",
                                    exit_code=1) from None

        return call


def _env_list(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _is_builtin(info: PluginInfo) -> bool:
    return info.distribution == "docsynth"


def _clash(kind: str, name: str, keep: PluginInfo, drop: PluginInfo) -> str:
    """One warning naming both plugins and their distributions."""
    which = "the built-in" if _is_builtin(keep) else "the first one"
    return (f"{kind} {name!r} is provided by both plugin {keep.name!r} (distribution {keep.distribution}) "
            f"and plugin {drop.name!r} (distribution {drop.distribution}); {which}, from "
            f"{keep.name!r}, is used")


def _command_name(info: Any) -> str | None:
    """The name Typer will give a registered command or sub-app (None when it cannot tell)."""
    name = getattr(info, "name", None)
    if not isinstance(name, str):  # a sub-app: its own name, else its callback's
        sub = getattr(info, "typer_instance", None)
        name = getattr(getattr(sub, "info", None), "name", None)
    if isinstance(name, str):
        return name
    callback = getattr(info, "callback", None)
    return get_command_name(callback.__name__) if callable(callback) else None


def _protocol_attrs(protocol: type) -> list[str]:
    attrs = set(getattr(protocol, "__annotations__", {}))
    attrs |= {k for k, v in vars(protocol).items() if callable(v)}
    return sorted(a for a in attrs if not a.startswith("_"))


_host: Host | None = None


def host() -> Host:
    """The process-wide plugin host, loaded from entry points on first use."""
    global _host
    if _host is None:
        _host = Host()
        _host.load_entry_points()
    return _host


def reset() -> None:
    """Forget loaded plugins (tests; after installing a plugin)."""
    global _host
    _host = None


def get(kind: str, name: str) -> Any:
    return host().get(kind, name)


def names(kind: str) -> list[str]:
    return host().names(kind)
