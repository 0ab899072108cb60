"""Where Ray listens, and who may talk to it.

Ray starts a control store (GCS), a raylet with its object manager, a runtime-env agent and
worker processes, each serving gRPC. By default Ray binds them to the machine's network address
(every interface): anyone who reaches the host could submit tasks. edgebench keeps them on
127.0.0.1 unless the user asks otherwise (:func:`loopback_only`; Ray binds loopback when it
advertises a loopback node address), and turns on Ray's token authentication for the clusters it
starts (:func:`require_token`): a node or driver must present the token in ``~/.ray/auth_token``
(or ``RAY_AUTH_TOKEN``).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

LOOPBACK = "127.0.0.1"
#: Ray reads it on import: "0" makes it use the loopback address for a node it starts.
CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
AUTH_ENV = "RAY_AUTH_MODE"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_of(address: str) -> str:
    """The host of ``HOST:PORT``."""
    return address.rsplit(":", 1)[0] if ":" in address else address


@contextmanager
def loopback_only() -> Iterator[None]:
    """Within: a Ray node started in this process (and the processes it starts) advertises and
    binds 127.0.0.1 only. The setting Ray read on import is set too, then both are restored."""
    from ray._private import ray_constants

    before_env, before_flag = os.environ.get(CLUSTER_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[CLUSTER_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before_flag
        if before_env is None:
            os.environ.pop(CLUSTER_ENV, None)
        else:
            os.environ[CLUSTER_ENV] = before_env


def require_token() -> bool:
    """For a cluster this process starts: Ray's token authentication on (unless the user set
    ``RAY_AUTH_MODE`` themselves), with a token made in ``~/.ray/auth_token`` if there is none.
    Whether it is on."""
    from ray._private.authentication.authentication_token_setup import (
        ensure_token_if_auth_enabled,
    )
    from ray._raylet import Config

    if os.environ.get(AUTH_ENV) is None:
        os.environ[AUTH_ENV] = "token"
        Config.initialize("")  # Ray caches its configuration: read the mode again
    ensure_token_if_auth_enabled(None, create_token_if_missing=True)
    token = Path.home() / ".ray" / "auth_token"  # Ray writes it world-readable
    with suppress(OSError):
        if token.stat().st_uid == os.getuid():
            token.chmod(0o600)
    return os.environ[AUTH_ENV].lower() == "token"


def present_token() -> None:
    """For joining a cluster: use token authentication when a token is at hand (Ray only does
    so by itself for a cluster it finds on this machine)."""
    from ray._private.authentication.authentication_token_setup import (
        maybe_enable_token_auth_if_token_available,
    )

    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def exposure_warning(address: str, head: bool, port: int) -> str:
    """What ``--listen ADDRESS`` makes reachable, for the agent to print."""
    what = (f"Ray's control store (GCS, port {port}), " if head else "") + (
        "this node's raylet and object manager, its runtime-env agent and its worker "
        "processes")
    auth = ("Token authentication is on: only a peer with this cluster's token "
            "(~/.ray/auth_token, or RAY_AUTH_TOKEN) is served"
            if os.environ.get(AUTH_ENV, "").lower() == "token" else
            f"Token authentication is OFF ({AUTH_ENV}={os.environ.get(AUTH_ENV)}): anyone who "
            "reaches these ports can run code on this host")
    return (f"warning: --listen {address}: {what} now accept connections from other hosts "
            f"(Ray binds every interface of this host and advertises {address}). {auth}. "
            "Use it on a private network or through an SSH tunnel only.")
