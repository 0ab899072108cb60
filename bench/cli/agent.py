"""``edgebench agent``: make this host a node of a Ray cluster, advertising its boards."""

from __future__ import annotations

import argparse
import platform
import sys

from bench.artifacts.cache import default_root
from bench.cli.args import add_cache, add_devices_dir
from bench.run.executors import node


def cmd_agent(args: argparse.Namespace) -> int:
    from bench.devices.device import list_devices, search_dirs
    from bench.run.executors.resources import boards_here, node_resources

    if (args.address is None) == (not args.head):
        raise LookupError("give --address HEAD:PORT to join a cluster, or --head to start one")
    dirs = search_dirs(args.devices_dir)
    devices, errors = list_devices(dirs)
    for error in errors:
        print(f"warning: skipped an invalid device file\n{error}", file=sys.stderr)
    spec = node.NodeSpec(address=args.address, resources=node_resources(devices),
                         cache=args.cache or default_root(), devices_dirs=dirs,
                         port=args.port, num_cpus=args.num_cpus,
                         node_name=args.node_name or platform.node(),
                         node_ip_address=args.node_ip_address)
    started = node.start(spec)
    boards = boards_here(devices)
    role = f"head of a new cluster at {started.address}" if args.head else \
        f"joined {args.address}"
    print(f"node {spec.node_name} ({started.node_ip_address}): {role}", flush=True)
    for resource, port in sorted(boards.items()):
        print(f"  {resource} on {port}", flush=True)
    if not boards:
        print("  no boards attached (host cells and builds only)", flush=True)
    return node.serve(started)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``agent`` to the CLI."""
    sp = sub.add_parser("agent", help="join a Ray cluster (or start its head) as a node that "
                                      "runs cells and advertises this host's boards")
    sp.add_argument("--address", metavar="HOST:PORT", help="the head node to join")
    sp.add_argument("--head", action="store_true", help="start a new cluster's head node here")
    sp.add_argument("--port", type=int, default=6379, help="the head's port (default: 6379)")
    sp.add_argument("--num-cpus", type=int, default=None,
                    help="CPUs to offer (default: all of this host's)")
    sp.add_argument("--node-name", default=None,
                    help="the name records give for work done here (default: the host name)")
    sp.add_argument("--node-ip-address", default=None,
                    help="the address other nodes reach this one at (default: Ray's choice)")
    add_devices_dir(sp)
    add_cache(sp)
    sp.set_defaults(func=cmd_agent)

