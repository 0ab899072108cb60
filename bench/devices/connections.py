"""Connection kinds of device files, read from the runner registry (entry points included).

A device file's ``connection.kind`` names the kind a registered runner serves; its other keys
are that kind's runners' options. Nothing here knows a kind by name.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bench import registry
from bench.errors import pydantic_problems, unknown

if TYPE_CHECKING:
    from bench.runners.base import Runner

log = logging.getLogger(__name__)


def all_runners() -> list[Runner]:
    """Every registered runner that loads; one that fails to import is logged and left out."""
    out = []
    for name in registry.runners.names():
        try:
            out.append(registry.runners.get(name))
        except Exception as e:  # a broken third-party plugin must not hide the others
            log.warning("runner %r cannot be loaded: %s: %s", name, type(e).__name__, e)
    return out


def runners_by_kind() -> dict[str, list[Runner]]:
    """Connection kind → the runners serving it, in registry order."""
    kinds: dict[str, list[Runner]] = {}
    for runner in all_runners():
        kinds.setdefault(runner.connection_kind, []).append(runner)
    return kinds


def runner_for(kind: str, artifact: str) -> Runner | None:
    """The runner serving ``kind`` connections for ``artifact`` artifacts, or None."""
    return next((r for r in runners_by_kind().get(kind, []) if artifact in r.artifacts), None)


def primary_runner(kind: str) -> Runner | None:
    """The runner of a kind's .tflite artifacts (else its first): what a device "runs on"."""
    runners = runners_by_kind().get(kind, [])
    return next((r for r in runners if "tflite" in r.artifacts), runners[0] if runners else None)


def option_problems(connection: dict[str, Any], is_host: bool | None
                    ) -> list[tuple[str, str]]:
    """Problems of a device file's ``connection``: an unknown kind or option (with the closest
    name), each runner's option errors, a runner for boards on a host device or vice versa."""
    kinds = runners_by_kind()
    kind = connection.get("kind")
    if not isinstance(kind, str) or kind not in kinds:
        return [("connection.kind", unknown("connection kind", kind, sorted(kinds)))]
    runners = kinds[kind]
    known = [name for r in runners for name in r.option_names()]
    problems = [(f"connection.{key}", unknown(f"option of a {kind!r} connection", key, known))
                for key in connection if key != "kind" and key not in known]
    for runner in runners:
        try:
            runner.parse_options(connection)
        except ValidationError as e:
            problems += pydantic_problems(e, "connection")
    for runner in runners if is_host is not None else []:
        if runner.targets == "board" and is_host:
            problems.append(("connection.kind", f"the {runner.name!r} runner serves boards, not "
                             f"`core: host` (the host is measured): give the board's core"))
        elif runner.targets == "host" and not is_host:
            problems.append(("connection.kind", f"the {runner.name!r} runner runs on this host: "
                             f"a {kind!r} device has `core: host`"))
    return problems
