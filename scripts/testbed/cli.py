"""The command line: `python scripts/testbed up|status|down` (see the package docstring)."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from .bed import DEFAULT_REGISTRIES, TestBed
from .common import DEFAULT_TIMEOUT, TestBedError, log
from .root import running_bed_root

DEFAULT_STATE_PATH = "/tmp/berth-testbed.json"
DESCRIPTION = "The Berth test bed: real Docker engines, registries, PostgreSQL and Redis on 127.0.0.1."


class _Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP in `up`: unwinds like KeyboardInterrupt, so stop() runs."""


def _install_signal_handlers() -> None:
    fired = []

    def handler(signum, _frame):
        if fired:  # already shutting down: let the orderly stop finish
            log.warning("%s: already stopping, please wait", signal.Signals(signum).name)
            return
        fired.append(signum)
        raise _Interrupted(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def _summary(state: dict) -> str:
    lines = [f"root      {state['root']}"]
    for e in state["engines"]:
        lines.append(f"engine    {e['name']}  {e['url']}  {e['socket']}  services on ports "
                     f"{e['port_range'][0]}-{e['port_range'][1]}  (pid {e['pid']})")
    for name, r in state["registries"].items():
        lines.append(f"registry  {name}  {r['url']}  (pid {r['pid']})")
    if state["postgres_url"]:
        lines.append(f"postgres  {state['postgres_url']}  (pid {state['postgres']['pid']})")
    if state["redis_url"]:
        lines.append(f"redis     {state['redis_url']}  (pid {state['redis']['pid']})")
    if state["image"]:
        lines.append(f"image     {state['image']}")
    return "\n".join(lines)


def _watch(bed: TestBed) -> None:
    """Block until a signal arrives, saying so once if a component dies in the meantime."""
    reported: set[str] = set()
    while True:
        components = {**{f"engine {n}": e.proc for n, e in bed.engines.items()},
                      **{f"registry {n}": r.proc for n, r in bed.registries.items()},
                      "postgres": bed.postgres and bed.postgres.proc,
                      "redis": bed.redis and bed.redis.proc}
        for name, proc in components.items():
            if proc is not None and not proc.alive and name not in reported:
                log.warning("%s exited unexpectedly (%s)", name, proc.describe_exit())
                reported.add(name)
        time.sleep(1)


def _myself() -> str:
    """How this command was run, for the hint on how to stop a detached bed."""
    return f"{sys.executable} {sys.argv[0]}"


def _cmd_up(args) -> int:
    _install_signal_handlers()
    if root := running_bed_root(args.state):
        # Overwriting its state file would lose the only handle on its processes.
        log.error("%s describes a test bed that is still there (%s): run `down --state %s` "
                  "first, or pass another --state", args.state, root, args.state)
        return 1
    registries = [name for name in args.registries.split(",") if name]
    bed = TestBed(args.root, engines=args.engines, registries=registries,
                  postgres=not args.no_postgres, redis=not args.no_redis,
                  image=False if args.no_image else None,
                  state_path=args.state, keep=args.keep, timeout=args.timeout)
    began = time.monotonic()
    try:
        state = bed.start()
    except TestBedError as exc:
        log.error("%s", exc)
        return 1
    except _Interrupted as exc:
        log.error("interrupted (%s) while starting; stopped", exc)
        return 130
    print(json.dumps(state, indent=2), flush=True)
    print(f"\nBerth test bed up in {time.monotonic() - began:.1f}s; state in {args.state}\n"
          + _summary(state), file=sys.stderr)
    if args.detach:
        bed.detach()
        print(f"\ndetached; stop it with: {_myself()} down --state {args.state}", file=sys.stderr)
        return 0
    print("\nrunning; Ctrl-C stops it", file=sys.stderr, flush=True)
    try:
        _watch(bed)
    except _Interrupted as exc:
        log.info("%s: stopping", exc)
    finally:
        began = time.monotonic()
        bed.stop()
        print(f"Berth test bed down in {time.monotonic() - began:.1f}s", file=sys.stderr)
    return 0


def _load(args) -> TestBed | None:
    if not Path(args.state).exists():
        log.error("no state file %s (is a test bed up? `up --state FILE` writes it)", args.state)
        return None
    return TestBed.from_state(args.state)


def _cmd_down(args) -> int:
    bed = _load(args)
    if bed is None:
        return 1
    if args.keep:
        bed.keep = True
    began = time.monotonic()
    bed.stop()
    print(f"Berth test bed down in {time.monotonic() - began:.1f}s", file=sys.stderr)
    return 0


def _cmd_status(args) -> int:
    bed = _load(args)
    if bed is None:
        return 1
    status = bed.status()
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(_summary(bed.state))
        for name, up in status.items():
            print(f"{'up  ' if up else 'DOWN'}  {name}")
    return 0 if all(status.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="testbed", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the test bed; Ctrl-C stops it (`down` if --detach)")
    up.add_argument("--root", help="base directory (default: a new /tmp/berth-XXXXXXXX)")
    up.add_argument("--engines", type=int, default=3, help="number of Docker engines (default 3)")
    up.add_argument("--registries", default=",".join(DEFAULT_REGISTRIES),
                    help="comma-separated registry names (default: primary,mirror,mirror-b)")
    up.add_argument("--no-postgres", action="store_true")
    up.add_argument("--no-redis", action="store_true")
    up.add_argument("--no-image", action="store_true", help="don't build and push the test image")
    up.add_argument("--detach", action="store_true", help="leave it running and exit")
    up.add_argument("--keep", action="store_true", help="keep the root directory after stopping")
    up.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per wait")
    up.set_defaults(run=_cmd_up)

    down = commands.add_parser("down", help="stop a test bed described by a state file")
    down.add_argument("--keep", action="store_true", help="keep the root directory")
    down.set_defaults(run=_cmd_down)

    status = commands.add_parser("status", help="check that each component answers")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=_cmd_status)

    for command in (up, down, status):
        default_state = os.environ.get("BERTH_TESTBED_STATE", DEFAULT_STATE_PATH)
        command.add_argument("--state", default=default_state,
                             help=f"state file (default: $BERTH_TESTBED_STATE or {DEFAULT_STATE_PATH})")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s testbed: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    return args.run(args)
