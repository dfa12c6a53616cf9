"""`rlm-tui serve`: the app in a browser, one app process per browser tab, through textual-serve."""

from __future__ import annotations

import argparse
import ipaddress
import re
import shlex
import sys
from contextlib import closing
from pathlib import Path

from rlm_tui.commands.common import UserError, argtype, context_limit, db_path_of, id_prefix

LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


def host(raw: str) -> str:
    """An IP address or a host name to listen on."""
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        pass
    if not HOSTNAME.fullmatch(raw):
        raise ValueError(f"expected an IP address or a host name, got {raw!r}")
    return raw.lower()


def port(raw: str) -> int:
    """A TCP port from 1 to 65535."""
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"expected a port number, got {raw!r}") from None
    if not 1 <= value <= 65535:
        raise ValueError(f"must be a port from 1 to 65535, got {raw}")
    return value


def is_local(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name in LOCAL_NAMES


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    serve = sub.add_parser("serve", parents=[common], help="serve the app to a web browser (local-only by default)")
    serve.add_argument(
        "id", nargs="?", type=argtype(id_prefix), help="run or rollout id or prefix to open (default: the runs view)"
    )
    serve.add_argument(
        "--host", type=argtype(host), default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=argtype(port), default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--context-limit", type=argtype(context_limit), default=128_000, help="for the context gauge")
    serve.set_defaults(handler=cmd_serve)


def app_command(db: Path, run_or_rollout: str | None, limit: int) -> str:
    """The shell command textual-serve starts for each browser tab: `replay` on the same store, every word quoted."""
    argv = [sys.executable, "-m", "rlm_tui.cli", "replay", "--db", str(db), "--context-limit", str(limit)]
    if run_or_rollout:
        argv.append(run_or_rollout)
    return shlex.join(argv)


def cmd_serve(args: argparse.Namespace) -> int:
    from rlm_tui.store import open_db, resolve_run_or_rollout

    path = Path(db_path_of(args)).resolve()  # each tab's app starts where the server runs, but the path is pinned
    with closing(open_db(path, create=False)) as db:  # a missing store or id fails here, before anything listens
        if args.id:
            resolve_run_or_rollout(db, args.id)

    from textual_serve.server import Server

    url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}"

    class Serving(Server):
        def initialize_logging(self) -> None:  # no line per request: Python's default shows warnings and errors
            pass

        async def on_startup(self, app: object) -> None:  # one line of ours instead of the library's banner
            where = "local-only; pass --host to listen elsewhere" if is_local(args.host) else "reachable from outside"
            print(f"rlm-tui: serving the app on {url} ({where}); Ctrl+C stops", flush=True)

    if not is_local(args.host):
        print(
            f"rlm-tui: warning: --host {args.host}: anyone who can reach port {args.port} controls the runs",
            file=sys.stderr,
            flush=True,
        )
    server = Serving(app_command(path, args.id, args.context_limit), host=args.host, port=args.port, public_url=url)
    try:
        server.serve()
    except OSError as exc:  # the port is taken, or not ours to bind, or the address is not this machine's
        raise UserError(f"cannot listen on {url}: {exc.strerror or exc}") from None
    # stopped: textual-serve leaves its tabs' pipes to be collected after its loop closed, which only complains
    sys.unraisablehook = lambda _: None
    return 0
