"""The `rlm-tui` command: run, attach, replay, runs, show, export."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sqlite3
import sys
from typing import Any, NoReturn

from rlm_tui.env import MAX_EXAMPLES, MODES, EnvError, http_url, load_environment, seed
from rlm_tui.text import printable, printable_data


OPENAI_URL = "https://api.openai.com/v1"
APP_SCRIPTED_DELAY = 1.5  # seconds per scripted call in the app: about a real model's pace, time to pause and look


class UserError(Exception):
    """Reported as one line on stderr, with a non-zero exit."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see `{self.prog} --help`)")


def _checked(parse):
    """An argparse type from a parser that raises ValueError with the reason (the knobs' parsers)."""
    def check(raw: str):
        try:
            return parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return check


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {raw}")
    return value


def _at_most(high: int):
    """A whole number from 1 to `high`."""
    def parse(raw: str) -> int:
        value = _positive_int(raw)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:,}, got {raw}")
        return value
    return parse


def _seconds(raw: str, *, zero: bool = False, high: float = 86_400) -> float:
    """A finite number of seconds up to `high`: positive, or with `zero` also 0."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise argparse.ArgumentTypeError(f"must be a {'' if zero else 'positive '}number of seconds, got {raw}")
    if value > high:
        raise argparse.ArgumentTypeError(f"must be at most {high:,g} seconds, got {raw}")
    return value


def _positive_float(raw: str) -> float:
    return _seconds(raw)


def add_request_timeout(parser: argparse.ArgumentParser) -> None:
    """--request-timeout, one definition for run and ablate."""
    parser.add_argument("--request-timeout", type=_positive_float, default=120.0, metavar="SECONDS",
                        help="seconds to wait for each model server reply before retrying (default 120)")


def _delay(raw: str) -> float:
    return _seconds(raw, zero=True, high=3600)


def _machine_mb() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20


def _memory(raw: str) -> int:
    value = _positive_int(raw)
    if value < 256:
        raise argparse.ArgumentTypeError(f"must be at least 256 (Python needs that much to start), got {raw}")
    if value > (machine := _machine_mb()):
        raise argparse.ArgumentTypeError(f"must be at most {machine:,}, all the memory this machine has, got {raw}")
    return value


def _not_empty(raw: str) -> str:
    if not raw.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return raw


def _run_id(raw: str) -> str:
    if len(raw) != 16 or not all(c in "0123456789abcdef" for c in raw):
        raise argparse.ArgumentTypeError(f"expected 16 hex digits (a run id as rlm-tui makes them), got {raw!r}")
    return raw


def _id_prefix(raw: str) -> str:
    if len(raw) > 64:
        raise argparse.ArgumentTypeError(f"an id has at most 64 characters, got {len(raw):,}")
    return raw


_context_limit = _at_most(100_000_000)


def _env_arg(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {raw!r}")
    return key.strip(), value.strip()


def build_parser() -> Parser:
    parser = Parser(prog="rlm-tui", description="Run, watch and steer Recursive Language Model rollouts.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", type=_not_empty, help="SQLite database (default: $RLM_TUI_DB or ./rlm-tui.db)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = sub.add_parser("run", parents=[common], help="run rollouts of an environment",
                         epilog="environments and their knobs: see `rlm-tui envs`")
    run.add_argument("env", help="environment, e.g. verbatim-copy")
    run.add_argument("--headless", action="store_true", help="no app: a progress bar, then a summary table")
    run.add_argument("--mode", choices=MODES, default="rlm", help="rlm, rlm-tips or llm (default rlm)")
    run.add_argument("--model", help="root model (default: gpt-5-mini with OPENAI_API_KEY, else scripted)")
    run.add_argument("--sub-model", help="model of the sub-LLMs (default: the root model)")
    run.add_argument("--base-url", type=_checked(http_url),
                     help="OpenAI-compatible http(s) endpoint (default: $OPENAI_BASE_URL, or OpenAI when it is unset "
                          "or empty)")
    run.add_argument("-n", "--num-examples", type=_at_most(MAX_EXAMPLES), default=5, help="rollouts to run (default 5)")
    run.add_argument("--concurrency", type=_at_most(256), default=8, help="rollouts at once (default 8)")
    run.add_argument("--sub-concurrency", type=_at_most(1024), default=16,
                     help="sub-LLM calls at once per rollout (default 16)")
    run.add_argument("--max-turns", type=_at_most(1000), default=30, help="root model calls per rollout (default 30)")
    run.add_argument("--timeout", type=_positive_float, default=120.0, help="seconds per REPL cell (default 120)")
    run.add_argument("--max-output-chars", type=_at_most(1_000_000), default=8192,
                     help="cell output the model sees (default 8192)")
    run.add_argument("--memory-mb", type=_memory, default=2048, help="memory limit of each sandbox (default 2048)")
    add_request_timeout(run)
    run.add_argument("--seed", type=_checked(seed), default=0, help="example seed, a 64-bit whole number (default 0)")
    run.add_argument("--env-arg", type=_env_arg, action="append", default=[], metavar="KEY=VALUE",
                     help="environment knob, repeatable")
    run.add_argument("--scripted-delay", type=_delay, default=None,
                     help=f"seconds per scripted model call (default 0 headless, {APP_SCRIPTED_DELAY} in the app)")
    run.add_argument("--context-limit", type=_context_limit, default=128_000,
                     help="the root model's context, for the app's gauge (default 128000)")
    run.add_argument("--run-id", type=_run_id, help=argparse.SUPPRESS)  # set by the app when it starts the engine

    attach = sub.add_parser("attach", parents=[common], help="follow and steer a run another process is executing")
    attach.add_argument("run_id", nargs="?", type=_id_prefix, help="run id or prefix (default: the newest running run)")
    attach.add_argument("--context-limit", type=_context_limit, default=128_000, help="for the context gauge")

    replay = sub.add_parser("replay", parents=[common], help="open the runs view, or replay a run or rollout")
    replay.add_argument("id", nargs="?", type=_id_prefix, help="run or rollout id or prefix (default: the runs view)")
    replay.add_argument("--context-limit", type=_context_limit, default=128_000, help="for the context gauge")

    sub.add_parser("runs", parents=[common], help="list the runs in the database")
    sub.add_parser("envs", help="list the environments and their knobs (--env-arg key=value)")

    show = sub.add_parser("show", parents=[common], help="print one rollout's transcript, or list a run's rollouts")
    show.add_argument("rollout_id", metavar="ID", type=_id_prefix, help="rollout or run id (a unique prefix is enough)")
    show.add_argument("--full", action="store_true",
                      help="full cell outputs, not what the model saw, and every sub-LLM call")

    export = sub.add_parser("export", parents=[common], help="write one record per rollout (JSONL or CSV)")
    export.add_argument("run_id", nargs="?", type=_id_prefix, help="run id or prefix (default: the latest run)")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl",
                        help="jsonl: one object per rollout; csv: one row per rollout, every metric a column")
    export.add_argument("-o", "--out", help="file to write (default: stdout)")
    from rlm_tui import ablate, resume
    from rlm_tui.report import render

    ablate.add_parser(sub, common)
    resume.add_parser(sub, common)
    render.add_parser(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    from rlm_tui.store import StoreError

    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except (UserError, EnvError, StoreError) as exc:
        print(f"rlm-tui: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:  # Ctrl-C, or headless.Stopped for SIGTERM and SIGHUP
        print(f"rlm-tui: {stop or 'stopped'}", file=sys.stderr)
        return 128 + getattr(stop, "signum", signal.SIGINT)
    except BrokenPipeError:
        return 0
    except sqlite3.DatabaseError as exc:  # damage found past opening, while reading
        print(f"rlm-tui: error: the database is damaged or locked ({printable(str(exc))}); pass another --db",
              file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line, the traceback only on request
        if os.environ.get("RLM_TUI_DEBUG"):
            raise
        print(f"rlm-tui: internal error: {type(exc).__name__}: {printable(str(exc))}; rerun with RLM_TUI_DEBUG=1 for the "
              "traceback and report it", file=sys.stderr)
        return 70


def db_path_of(args: argparse.Namespace):
    from rlm_tui.store import default_db_path

    if args.db is None and os.environ.get("RLM_TUI_DB") == "":
        raise UserError("RLM_TUI_DB is set but empty; name a database file, or unset it for ./rlm-tui.db")
    return args.db or default_db_path()


# --- run ------------------------------------------------------------------------------------------


def _resolve_model(args: argparse.Namespace) -> str:
    if args.model:
        return args.model
    if os.environ.get("OPENAI_API_KEY"):
        return "gpt-5-mini"
    print("rlm-tui: OPENAI_API_KEY is not set; using the offline scripted model", file=sys.stderr)
    return "scripted"


def resolve_models(args: argparse.Namespace) -> tuple[str, str, str | None]:
    """The root model, the sub-LLM model and the base URL a run asks for, checked to go together."""
    model = _resolve_model(args)
    sub_model = args.sub_model or model
    if (model == "scripted") != (sub_model == "scripted"):
        raise UserError("the scripted model plays both root and sub-LLMs; use it for both or for neither")
    return model, sub_model, args.base_url or _env_base_url()


def _env_base_url() -> str | None:
    """$OPENAI_BASE_URL, checked; empty counts as unset, as the OpenAI tools treat it."""
    raw = os.environ.get("OPENAI_BASE_URL") or None
    try:
        return raw and http_url(raw)
    except ValueError as exc:
        raise UserError(f"OPENAI_BASE_URL: {exc}") from None


def make_client(env: Any, model: str, base_url: str | None, scripted_delay: float = 0.0,
                request_timeout: float = 120.0) -> Any:
    """The scripted model, or an OpenAI-compatible client after checking its key and that the server answers."""
    from rlm_tui.engine.clients import OpenAIClient
    from rlm_tui.engine.scripted import ScriptedClient

    if model == "scripted":
        return ScriptedClient(env, delay=scripted_delay)
    key = os.environ.get("OPENAI_API_KEY")
    if not key and not base_url:
        raise UserError(f"model {model!r} needs OPENAI_API_KEY (or --base-url for a local server); "
                        "use --model scripted to run offline")
    base_url = base_url or OPENAI_URL  # explicit, so that the SDK never reads an empty $OPENAI_BASE_URL itself
    _check_reachable(base_url)
    return OpenAIClient(base_url=base_url, api_key=key, request_timeout=request_timeout)


def _check_reachable(base_url: str) -> None:
    import httpx

    try:
        httpx.get(base_url.rstrip("/") + "/models", timeout=10)
    except httpx.HTTPError as exc:
        raise UserError(f"cannot reach {base_url} ({type(exc).__name__}); check --base-url and the network") from None


def cmd_run(args: argparse.Namespace) -> int:
    if not args.headless and not (sys.stdin.isatty() and sys.stdout.isatty() and sys.stderr.isatty()):
        print("rlm-tui: not a terminal; running headless", file=sys.stderr)
        args.headless = True
    if args.scripted_delay is None:
        args.scripted_delay = 0.0 if args.headless else APP_SCRIPTED_DELAY
    if not args.headless:
        from rlm_tui.tui.launch import run_in_app

        return run_in_app(args)
    from rlm_tui.engine.rollout import RolloutSettings
    from rlm_tui.engine.run import Run, RunConfig
    from rlm_tui.sandbox import Limits
    from rlm_tui.store import EventWriter, open_db

    env_args = dict(args.env_arg)
    env = load_environment(args.env, env_args)
    model, sub_model, base_url = resolve_models(args)
    client = make_client(env, model, base_url, args.scripted_delay, args.request_timeout)
    settings = RolloutSettings(mode=args.mode, model=model, sub_model=sub_model, max_turns=args.max_turns,
                               timeout=args.timeout, max_output_chars=args.max_output_chars,
                               sub_concurrency=args.sub_concurrency, limits=Limits(memory_mb=args.memory_mb))
    config = RunConfig(env=args.env, env_args=env_args, num_examples=args.num_examples, seed=args.seed,
                       concurrency=args.concurrency, base_url=base_url, rollout=settings)
    path = db_path_of(args)
    db = open_db(path)
    writer = EventWriter(path)
    writer.start()
    from rlm_tui.headless import print_summary, run_headless

    try:
        run = Run(config, env, client, sinks=[writer.append], run_id=args.run_id,
                  commands=lambda run_id: queued_commands(db, run_id))
        state = run_headless(run, client)
    finally:
        writer.close()
    print_summary(state)
    if state.status == "failed":
        print(f"rlm-tui: error: {printable(str(run.error))}", file=sys.stderr)
        return 1
    failed = [r for r in state.rollouts.values() if r.status == "failed"]
    if failed and len(failed) == len(state.rollouts):
        print(f"rlm-tui: error: every rollout failed; the first: {printable(str(failed[0].error))}", file=sys.stderr)
        return 1
    if state.status == "killed":
        print(f"rlm-tui: run {run.id} was stopped; what it did is in {path}", file=sys.stderr)
        return 130
    return 0


def queued_commands(db: Any, run_id: str) -> list[Any]:
    from rlm_tui.engine.control import Command, ControlError
    from rlm_tui.store import take_commands

    commands = []
    for row in take_commands(db, run_id):
        try:
            commands.append(Command(row["action"], row["rollout_id"], row["text"] or "", row["id"]))
        except ControlError:
            pass  # the sender validated it; a malformed row changes nothing
    return commands


# --- reading the store --------------------------------------------------------------------------


def cmd_runs(args: argparse.Namespace) -> int:
    from rlm_tui.headless import print_runs
    from rlm_tui.store import list_runs, open_db

    print_runs(list_runs(open_db(db_path_of(args), create=False)))
    return 0


def _load_run(db: Any, run_id: str):
    from rlm_tui.state import fold
    from rlm_tui.store import read_events

    return fold([e for _, e in read_events(db, run_id=run_id)], run_id)


def cmd_show(args: argparse.Namespace) -> int:
    from rlm_tui.headless import print_rollouts, print_transcript
    from rlm_tui.store import StoreError, get_rollout, open_db, resolve_rollout_id, resolve_run_id

    db = open_db(db_path_of(args), create=False)
    try:
        rollout_id = resolve_rollout_id(db, args.rollout_id)
    except StoreError as rollout_error:
        try:
            run_id = resolve_run_id(db, args.rollout_id)
        except StoreError as run_error:
            for error in (run_error, rollout_error):
                if "matches" in str(error):  # a prefix of several ids: say so, not that it matches nothing
                    raise error from None
            raise UserError(f"no rollout or run id starts with {args.rollout_id!r}; `rlm-tui runs` lists the runs") from None
        print_rollouts(_load_run(db, run_id))  # a run id: list its rollouts
        return 0
    run = _load_run(db, get_rollout(db, rollout_id)["run_id"])
    print_transcript(run, run.rollouts[rollout_id], full=args.full)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from rlm_tui.export import run_records
    from rlm_tui.store import get_run, latest_run_id, open_db, resolve_run_id

    db = open_db(db_path_of(args), create=False)
    run_id = resolve_run_id(db, args.run_id) if args.run_id else latest_run_id(db)
    if run_id is None:
        raise UserError("the database holds no runs yet; start one with `rlm-tui run ENV`")
    row = get_run(db, run_id)
    records = run_records(_load_run(db, run_id), row["status"] if row else None)
    try:
        out = open(args.out, "w", newline="") if args.out else sys.stdout
    except OSError as exc:
        raise UserError(f"cannot write {args.out}: {exc.strerror}; pass another -o") from None
    try:
        if args.format == "csv":
            import csv

            from rlm_tui.export import csv_table

            header, rows = csv_table(records)
            terminal = out.isatty()
            if terminal:  # a file or a pipe keeps the exact text; a terminal must not act on it
                header, rows = printable_data(header), printable_data(rows)
            writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n" if terminal else "\r\n")
            writer.writeheader()
            writer.writerows(rows)
        else:
            out.write("".join(json.dumps(record, default=str) + "\n" for record in records))
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"wrote {len(records)} rollouts of run {run_id} to {args.out}", file=sys.stderr)
    return 0


def cmd_envs(args: argparse.Namespace) -> int:
    from rlm_tui.env import ENVIRONMENTS, load_environment

    for name in ENVIRONMENTS:
        env = load_environment(name)
        print(name)
        for knob in env.knobs:
            default = "-n" if knob.default is None else "none" if knob.default == "" else knob.default
            print(f"  {knob.name:<22} default {default!s:<10} {knob.help}")
    return 0


def _lazy(module: str, name: str):
    """A command whose module is imported only when it runs (matplotlib and textual are slow to import)."""
    def command(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), name)(args)

    return command


COMMANDS = {"run": cmd_run, "runs": cmd_runs, "envs": cmd_envs, "show": cmd_show, "export": cmd_export,
            "attach": _lazy("rlm_tui.tui.launch", "cmd_attach"), "replay": _lazy("rlm_tui.tui.launch", "cmd_replay"),
            "ablate": _lazy("rlm_tui.ablate", "cmd_ablate"), "resume": _lazy("rlm_tui.resume", "cmd_resume"),
            "report": _lazy("rlm_tui.report.render", "cmd_report")}

if __name__ == "__main__":
    sys.exit(main())
