"""Start or join a Ray node for ``edgebench agent``: this host's CPUs, its quiet share and the
boards attached to it (:func:`bench.run.executors.resources.node_resources`).

The node's processes inherit ``EDGEBENCH_CACHE`` (this host's artifact cache) and
``EDGEBENCH_DEVICES`` (its device files, which know the boards' local ports), so tasks placed
here use both. It lives as long as the agent: a signal stops it, and if the agent is killed,
Ray's reaper takes the node's processes down with it.

The node listens on 127.0.0.1 only unless ``listen`` names an address (:mod:`.network`); a head
turns on Ray's token authentication, a joining node presents the token it has.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.run.executors import network

DEFAULT_PORT = 6379


@dataclass
class NodeSpec:
    """What ``edgebench agent`` asks of Ray."""

    address: str | None  # the head's HOST:PORT; None: start a head node
    resources: dict[str, float]
    cache: Path
    devices_dirs: list[Path] = field(default_factory=list)
    port: int = DEFAULT_PORT  # a head's port
    num_cpus: int | None = None
    node_name: str | None = None
    #: the address other nodes reach this one at; None: 127.0.0.1, this machine only
    listen: str | None = None

    def env(self) -> dict[str, str]:
        return {"EDGEBENCH_CACHE": str(self.cache.resolve()),
                "EDGEBENCH_DEVICES": os.pathsep.join(str(d.resolve())
                                                     for d in self.devices_dirs)}


def start(spec: NodeSpec) -> Any:
    """Start the node (a ``ray._private.node.Node``, as ``ray start`` does); returns it once
    its processes are up."""
    import ray._private.node
    import ray._private.parameter
    from ray._private import services
    from ray._private.authentication.authentication_token_setup import (
        ensure_token_if_auth_enabled,
    )

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    head = spec.address is None
    if head:
        network.require_token()
    else:
        network.present_token()
        ensure_token_if_auth_enabled(None, create_token_if_missing=False)
    params = ray._private.parameter.RayParams(
        node_name=spec.node_name, num_cpus=spec.num_cpus, num_gpus=0,
        resources=spec.resources, env_vars=spec.env(), include_dashboard=False,
        node_ip_address=spec.listen)
    with network.loopback_only() if spec.listen is None else nullcontext():
        if head:
            params.gcs_server_port = spec.port
            params.update_if_absent(node_ip_address=services.get_node_ip_address())
        else:
            params.gcs_address = services.canonicalize_bootstrap_address(spec.address)
            params.update_if_absent(node_ip_address=services.get_node_ip_address(
                params.gcs_address), include_log_monitor=False)
        params.update_if_absent(node_name=params.node_ip_address)
        return ray._private.node.Node(params, head=head, shutdown_at_exit=True,
                                      spawn_reaper=True)


def serve(node: Any, poll_s: float = 1.0) -> int:
    """Keep the node up until SIGTERM or SIGINT (exit status 0), or until one of its
    processes dies (1); then stop the rest."""
    stop = []

    def request_stop(signum: int, frame: object) -> None:
        stop.append(signum)

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop:
            if node.dead_processes():
                return 1
            time.sleep(poll_s)
        return 0
    finally:
        node.kill_all_processes(check_alive=False, allow_graceful=True)
        for s, handler in previous.items():
            signal.signal(s, handler)
