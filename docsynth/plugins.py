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
        for ep in sorted(md.entry_points(group=GROUP), key=_builtin_first):
            dist = ep.dist.name if ep.dist else None
            keys = {ep.name, dist} - {None}
            if allow is not None and not keys & allow:
                continue
            if keys & deny or ep.name in self.infos:
                continue
            info = PluginInfo(ep.name, dist, ep.dist.version if ep.dist else None, ep.value)
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
            # Call each implementation on its own, in registration order, so one broken
            # plugin cannot hide the others and every object is traced to its plugin.
            for impl in reversed(caller.get_hookimpls()):
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
                other = self.owner[(kind, name)]
                info.errors.append(f"{kind} {name!r} already provided by plugin {other!r}; ignored")
                return
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
        for impl in self.pm.hook.register_commands.get_hookimpls():
            try:
                impl.function(cli=cli)
            except Exception as exc:
                self._info(impl.plugin_name).errors.append(
                    f"register_commands failed: {type(exc).__name__}: {exc}"
                )

    def report_errors(self) -> None:
        """Print each plugin problem once on stderr."""
        if self._reported:
            return
        self.collect()
        self._reported = True
        for info in self.infos.values():
            for err in info.errors:
                print(f"docsynth: plugin {info.name}: {err}", file=sys.stderr)


def _env_list(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _builtin_first(ep: md.EntryPoint) -> tuple[int, str]:
    return (0 if ep.dist and ep.dist.name == "docsynth" else 1, ep.name)


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
