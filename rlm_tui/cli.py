"""The `rlm-tui` command: the parser assembled from rlm_tui.commands, and every error as one line."""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import sys
from typing import NoReturn

from rlm_tui.commands import ablate, diff, envs, fork, import_, report, resume, run, serve, stored, view
from rlm_tui.commands.common import UserError, argtype, not_empty
from rlm_tui.engine.models import ModelSetupError
from rlm_tui.env import EnvError
from rlm_tui.text import printable


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> Parser:
    parser = Parser(prog="rlm-tui", description="Run, watch and steer Recursive Language Model rollouts.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", type=argtype(not_empty), help="SQLite database (default: $RLM_TUI_DB or ./rlm-tui.db)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    run.add_parser(sub, common)
    view.add_parsers(sub, common)
    stored.add_parsers(sub, common)
    diff.add_parser(sub, common)
    envs.add_parser(sub, common)
    ablate.add_parser(sub, common)
    resume.add_parser(sub, common)
    fork.add_parser(sub, common)
    report.add_parser(sub, common)
    serve.add_parser(sub, common)
    import_.add_parser(sub, common)
    return parser


def _user_errors() -> tuple[type[Exception], ...]:
    """The errors whose message is for the user; the store raised none if it was never imported (it is slow to)."""
    store_error = getattr(sys.modules.get("rlm_tui.store"), "StoreError", None)
    return (UserError, EnvError, ModelSetupError) + ((store_error,) if store_error else ())


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except KeyboardInterrupt as stop:  # Ctrl-C, or headless.Stopped for SIGTERM and SIGHUP
        print(f"rlm-tui: {stop or 'stopped'}", file=sys.stderr)
        return 128 + getattr(stop, "signum", signal.SIGINT)
    except BrokenPipeError:
        return 0
    except sqlite3.DatabaseError as exc:  # damage found past opening, while reading
        print(
            f"rlm-tui: error: the database is damaged or locked ({printable(str(exc))}); pass another --db",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:
        if isinstance(exc, _user_errors()):
            print(f"rlm-tui: error: {printable(str(exc))}", file=sys.stderr)
            return 2
        if os.environ.get("RLM_TUI_DEBUG"):  # a bug: still one line, the traceback only on request
            raise
        print(
            f"rlm-tui: internal error: {type(exc).__name__}: {printable(str(exc))}; rerun with RLM_TUI_DEBUG=1 for the "
            "traceback and report it",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":
    sys.exit(main())
