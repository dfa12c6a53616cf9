"""The run options, defined once: `run`, `ablate` (its grid axes too) and the app's engine launch read this table."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from rlm_tui.commands import common as p
from rlm_tui.engine.generation import REASONING_EFFORTS, TOOL_PROTOCOLS
from rlm_tui.engine.ray_limits import MAX_RETRIES, cluster_address, ray_refuses
from rlm_tui.env import MAX_EXAMPLES, MODES, http_url
from rlm_tui.env import seed as a_seed  # the class body below has a field named seed

APP_SCRIPTED_DELAY = 1.5  # seconds per scripted call in the app: about a real model's pace, time to pause and look


@dataclass(frozen=True)
class Sweep:
    """How `ablate` takes an option as a grid axis: a comma list, one cell per value."""

    flag: str
    default: tuple[Any, ...]
    help: str
    parse: Callable[[str], Any] | None = None  # the whole argument; None: each comma item by the option's parser
    metavar: str | None = None


def option(
    *flags: str,
    default: Any,
    help: str,
    parse: Callable[[str], Any] | None = None,
    choices: tuple[str, ...] | None = None,
    repeat: bool = False,
    metavar: str | None = None,
    sweep: Sweep | None = None,
    switch: bool = False,
) -> Any:
    """A field of RunOptions and the command-line option that sets it; `switch`: a flag that takes no value."""
    meta = {
        "switch": switch,
        "flags": flags,
        "parse": parse,
        "choices": choices,
        "repeat": repeat,
        "help": help,
        "metavar": metavar,
        "sweep": sweep,
    }
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class RunOptions:
    """A run's settings as the command line gives them; model, sub_model and base_url None until resolved."""

    mode: str = option(
        "--mode",
        default="rlm",
        choices=MODES,
        help="rlm, rlm-tips or llm (default rlm)",
        sweep=Sweep("--modes", ("llm", "rlm", "rlm-tips"), "comma list (default llm,rlm,rlm-tips)", metavar="MODES"),
    )
    model: str | None = option(
        "--model", default=None, help="root model (default: gpt-5-mini with OPENAI_API_KEY, else scripted)"
    )
    sub_model: str | None = option("--sub-model", default=None, help="model of the sub-LLMs (default: the root model)")
    base_url: str | None = option(
        "--base-url",
        default=None,
        parse=http_url,
        help="OpenAI-compatible http(s) endpoint (default: $OPENAI_BASE_URL, or OpenAI when it is unset or empty)",
    )
    num_examples: int = option(
        "-n", "--num-examples", default=5, parse=p.at_most(MAX_EXAMPLES), help="rollouts to run (default 5)"
    )
    concurrency: int = option("--concurrency", default=8, parse=p.at_most(256), help="rollouts at once (default 8)")
    executor: str = option(
        "--executor",
        default="local",
        choices=("local", "ray"),
        help="where rollouts run: local (this process, the default) or ray (the nodes of a Ray cluster with nsjail; "
        "see docs/scale-out.md)",
    )
    ray_address: str | None = option(
        "--ray-address",
        default=None,
        parse=cluster_address,
        metavar="ADDR",
        help="the Ray cluster for --executor ray: HOST:PORT, ray://HOST:PORT or auto "
        "(default: RAY_ADDRESS, else a cluster on this machine)",
    )
    retries: int = option(
        "--retries",
        default=0,
        parse=p.count(MAX_RETRIES),
        metavar="N",
        help="with --executor ray: times a rollout whose node was lost starts again on another node (default 0)",
    )
    sub_concurrency: int = option(
        "--sub-concurrency",
        default=64,
        parse=p.at_most(1024),
        help="sub-LLM calls at once per rollout (default 64: a batch of up to 64 in one wave, at most 512 "
        "connections at the default --concurrency; raise it for wider batches if the server takes them)",
    )
    max_turns: int = option(
        "--max-turns", default=30, parse=p.at_most(1000), help="root model calls per rollout (default 30)"
    )
    timeout: float = option(
        "--timeout",
        default=120.0,
        parse=p.seconds,
        help="seconds per REPL cell (default 120)",
        sweep=Sweep("--timeout", (120.0,), "seconds per REPL cell; a comma list sweeps it (default 120)"),
    )
    max_output_chars: int = option(
        "--max-output-chars", default=8192, parse=p.at_most(1_000_000), help="cell output the model sees (default 8192)"
    )
    memory_mb: int = option(
        "--memory-mb", default=2048, parse=p.memory_mb, help="memory limit of each sandbox (default 2048)"
    )
    cpu_seconds: int = option(
        "--cpu-seconds",
        default=600,
        parse=p.at_most(86_400),
        help="CPU seconds for each rollout's code, across REPL restarts (default 600)",
    )
    request_timeout: float = option(
        "--request-timeout",
        default=120.0,
        parse=p.seconds,
        metavar="SECONDS",
        help="seconds to wait for each model server reply before retrying (default 120)",
    )
    seed: int = option("--seed", default=0, parse=a_seed, help="example seed, a 64-bit whole number (default 0)")
    env_arg: tuple[tuple[str, str], ...] = option(
        "--env-arg",
        default=(),
        parse=p.env_arg,
        repeat=True,
        metavar="KEY=VALUE",
        help="environment knob, repeatable",
        sweep=Sweep(
            "--env-arg",
            (),
            "environment knob; a comma list sweeps it, one cell per value (repeatable)",
            parse=p.env_sweep,
            metavar="KEY=V1,V2",
        ),
    )
    scripted_delay: float | None = option(
        "--scripted-delay",
        default=None,
        parse=p.delay,
        help=f"seconds per scripted model call (default 0 headless, {APP_SCRIPTED_DELAY} in the app)",
    )
    scripted_window: int = option(
        "--scripted-window",
        default=32_000,
        parse=p.at_most(100_000_000),
        metavar="TOKENS",
        help="context window of the offline simulated model, in tokens of 4 characters (default 32000)",
    )
    scripted_errors: float = option(
        "--scripted-errors",
        default=1.0,
        parse=p.fraction(100.0),
        metavar="SCALE",
        help="scales how often the offline simulated model slips; 0: never (default 1; see docs/simulated-model.md)",
    )
    context_limit: int = option(
        "--context-limit",
        default=128_000,
        parse=p.context_limit,
        help="the root model's context, for the app's gauge, when the server does not say it (default 128000)",
    )
    tool_protocol: str = option(
        "--tool-protocol",
        default="auto",
        choices=TOOL_PROTOCOLS,
        help="how the root model's cells arrive: native tool calls, fenced blocks in its text, "
        "or auto: either (default auto; see docs/servers.md)",
    )
    max_nudges: int = option(
        "--max-nudges",
        default=1,
        parse=p.count(10),
        help="reminders after a turn that ran no code, before no_tool_call (default 1)",
    )
    max_tokens: int | None = option(
        "--max-tokens",
        default=None,
        parse=p.at_most(1_000_000),
        help="most tokens per reply of the root model (default: the server's)",
    )
    temperature: float | None = option(
        "--temperature",
        default=None,
        parse=p.fraction(2.0),
        help="sampling temperature of the root model (default: the server's)",
    )
    top_p: float | None = option(
        "--top-p",
        default=None,
        parse=p.fraction(1.0),
        help="nucleus sampling of the root model (default: the server's)",
    )
    sampling_seed: int | None = option(
        "--sampling-seed",
        default=None,
        parse=a_seed,
        help="sampling seed sent to the server for the root model (--seed chooses the examples)",
    )
    reasoning_effort: str | None = option(
        "--reasoning-effort",
        default=None,
        choices=REASONING_EFFORTS,
        help="reasoning effort of the root model (default: the server's)",
    )
    extra_body: str | None = option(
        "--extra-body",
        default=None,
        parse=p.json_object,
        metavar="JSON",
        help="a JSON object of the server's own request fields for the root model",
    )
    sub_max_tokens: int | None = option(
        "--sub-max-tokens",
        default=None,
        parse=p.at_most(1_000_000),
        help="most tokens per reply of the sub-LLMs (default: the server's)",
    )
    sub_temperature: float | None = option(
        "--sub-temperature",
        default=None,
        parse=p.fraction(2.0),
        help="sampling temperature of the sub-LLMs (default: the server's)",
    )
    sub_top_p: float | None = option(
        "--sub-top-p",
        default=None,
        parse=p.fraction(1.0),
        help="nucleus sampling of the sub-LLMs (default: the server's)",
    )
    sub_sampling_seed: int | None = option(
        "--sub-sampling-seed",
        default=None,
        parse=a_seed,
        help="sampling seed sent to the server for the sub-LLMs (--seed chooses the examples)",
    )
    sub_reasoning_effort: str | None = option(
        "--sub-reasoning-effort",
        default=None,
        choices=REASONING_EFFORTS,
        help="reasoning effort of the sub-LLMs (default: the server's)",
    )
    max_depth: int = option(
        "--max-depth",
        default=1,
        parse=p.at_most(4),
        help="recursion depth (default 1: sub-LLMs are plain LLM calls); 2: the REPL's rlm_batch starts child RLMs, "
        "each with a jail of its own; 3: theirs may too",
    )
    max_tokens_total: int | None = option(
        "--max-tokens-total",
        default=None,
        parse=p.at_most(10**12),
        metavar="TOKENS",
        help="budget per rollout: main and sub-LLM tokens; it stops at the next safe point with budget_tokens",
    )
    max_usd: float | None = option(
        "--max-usd",
        default=None,
        parse=p.fraction(1e6),
        metavar="USD",
        help="budget per rollout in dollars (needs a price for each model: --price, --prices); stops with budget_usd",
    )
    max_seconds: float | None = option(
        "--max-seconds",
        default=None,
        parse=p.seconds,
        help="budget per rollout: wall time from its start; stops with budget_seconds",
    )
    max_sub_calls: int | None = option(
        "--max-sub-calls",
        default=None,
        parse=p.count(10**9),
        metavar="N",
        help="budget per rollout: sub-LLM calls; a batch that would cross it is refused in the REPL",
    )
    run_max_tokens_total: int | None = option(
        "--run-max-tokens-total",
        default=None,
        parse=p.at_most(10**12),
        metavar="TOKENS",
        help="the same, for the whole run",
    )
    run_max_usd: float | None = option(
        "--run-max-usd", default=None, parse=p.fraction(1e6), metavar="USD", help="the same, for the whole run"
    )
    run_max_seconds: float | None = option(
        "--run-max-seconds", default=None, parse=p.seconds, help="the same, for the whole run"
    )
    run_max_sub_calls: int | None = option(
        "--run-max-sub-calls", default=None, parse=p.count(10**9), metavar="N", help="the same, for the whole run"
    )
    prices: str | None = option(
        "--prices",
        default=None,
        metavar="FILE",
        help="a JSON price file over the shipped one (default: $RLM_TUI_PRICES; see docs/cost.md)",
    )
    price: tuple[str, ...] = option(
        "--price",
        default=(),
        parse=p.price,
        repeat=True,
        metavar="MODEL=IN,[CACHED,]OUT",
        help="a model's price in USD per million tokens, over the price files (repeatable)",
    )
    approve: bool = option(
        "--approve",
        default=False,
        switch=True,
        help="each cell the model proposes waits for the operator to run, edit, skip or answer it "
        "(in the app, or `rlm-tui attach`; see docs/steering.md)",
    )
    sub_extra_body: str | None = option(
        "--sub-extra-body",
        default=None,
        parse=p.json_object,
        metavar="JSON",
        help="a JSON object of the server's own request fields for the sub-LLMs",
    )

    @classmethod
    def from_args(cls, args: argparse.Namespace, *, without: tuple[str, ...] = ()) -> RunOptions:
        """The options `add_run_options` parsed; those named in `without` keep their defaults."""
        values = {f.name: getattr(args, f.name) for f in fields(cls) if f.name not in without}
        return cls(**{**values, "env_arg": tuple(values.get("env_arg", ()))})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunOptions:
        """Options stored by an earlier rlm-tui: the ones it did not know take their defaults."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        return cls(**{**values, "env_arg": tuple(tuple(kv) for kv in values.get("env_arg", ()))})

    def argv(self) -> list[str]:
        """These options as command-line arguments, which `from_args` reads back the same."""
        out: list[str] = []
        for f in fields(self):
            flag, value = f.metadata["flags"][-1], getattr(self, f.name)
            if value is None or value is False:
                continue
            if f.metadata["switch"]:
                out.append(flag)
                continue
            for item in value if f.metadata["repeat"] else (value,):
                out += [flag, "=".join(item) if isinstance(item, tuple) else str(item)]
        return out

    def resolved(self) -> RunOptions:
        """With the models and base URL filled in and checked (defaults: see `--model`)."""
        from rlm_tui.engine.models import resolve_models

        model, sub_model, base_url = resolve_models(self.model, self.sub_model, self.base_url)
        return replace(self, model=model, sub_model=sub_model, base_url=base_url)

    def client(self, env: Any) -> Any:
        from rlm_tui.engine.models import make_client
        from rlm_tui.engine.simulated import Simulation

        simulation = Simulation(seed=self.seed, window=self.scripted_window, errors=self.scripted_errors)
        return make_client(env, self.model, self.base_url, self.scripted_delay or 0.0, self.request_timeout, simulation)

    def generation(self, prefix: str) -> Any:
        """The sampling knobs of the root model (prefix "") or of the sub-LLMs ("sub_")."""
        import json

        from rlm_tui.engine.generation import Generation

        knobs = {k: getattr(self, prefix + k) for k in ("max_tokens", "temperature", "top_p", "reasoning_effort")}
        extra = getattr(self, prefix + "extra_body")
        return Generation(
            **knobs, seed=getattr(self, prefix + "sampling_seed"), extra_body=json.loads(extra) if extra else {}
        )

    def run_config(self, env: str, **extra: Any) -> Any:
        """The engine's RunConfig for environment `env`; `extra`: the grid fields."""
        from rlm_tui.engine import prices
        from rlm_tui.engine.budgets import Budget
        from rlm_tui.engine.rollout import RolloutSettings
        from rlm_tui.engine.run import RunConfig
        from rlm_tui.sandbox import Limits

        try:
            table = prices.load(self.prices, tuple(prices.parse_price(text) for text in self.price))
        except prices.PriceError as exc:
            raise p.UserError(str(exc)) from None

        settings = RolloutSettings(
            mode=self.mode,
            model=self.model,
            sub_model=self.sub_model,
            max_turns=self.max_turns,
            timeout=self.timeout,
            max_output_chars=self.max_output_chars,
            sub_concurrency=self.sub_concurrency,
            limits=Limits(memory_mb=self.memory_mb, cpu_seconds=self.cpu_seconds),
            tool_protocol=self.tool_protocol,
            max_nudges=self.max_nudges,
            generation=self.generation(""),
            sub_generation=self.generation("sub_"),
            approve=self.approve,
            max_depth=self.max_depth,
            price=table.price_of(self.model or ""),
            sub_price=table.price_of(self.sub_model or ""),
            budget=Budget(
                tokens=self.max_tokens_total, usd=self.max_usd, seconds=self.max_seconds, sub_calls=self.max_sub_calls
            ),
        )
        run_budget = Budget(
            tokens=self.run_max_tokens_total,
            usd=self.run_max_usd,
            seconds=self.run_max_seconds,
            sub_calls=self.run_max_sub_calls,
        )
        if settings.budget.usd is not None or run_budget.usd is not None:
            unpriced = [
                m for m, price in ((self.model, settings.price), (self.sub_model, settings.sub_price)) if not price
            ]
            if unpriced:
                raise p.UserError(
                    f"a dollar budget needs prices, and {unpriced[0]} has none: add --price {unpriced[0]}=IN,OUT "
                    "(USD per million tokens) or a --prices file"
                )
        if self.executor != "ray" and (self.retries or self.ray_address):
            raise p.UserError(f"{'--retries' if self.retries else '--ray-address'} needs --executor ray")
        config = RunConfig(
            env=env,
            env_args=dict(self.env_arg),
            num_examples=self.num_examples,
            seed=self.seed,
            concurrency=self.concurrency,
            executor=self.executor,
            ray_address=self.ray_address,
            retries=self.retries,
            base_url=self.base_url,
            context_limit=self.context_limit,
            rollout=settings,
            run_budget=run_budget,
            prices_date=table.date,
            simulation={"window": self.scripted_window, "errors": self.scripted_errors},
            **extra,
        )
        if self.executor == "ray" and (why := ray_refuses(config)) is not None:
            raise p.UserError(why)
        return config


AXES = tuple(f.name for f in fields(RunOptions) if f.metadata["sweep"])


def add_run_options(parser: argparse.ArgumentParser, *, sweeps: bool = False) -> None:
    """Every run option; with `sweeps`, the grid axes take comma lists (ablate)."""
    for f in fields(RunOptions):
        m, sweep = f.metadata, f.metadata["sweep"] if sweeps else None
        kwargs: dict[str, Any] = {"dest": f.name, "help": m["help"], "metavar": m["metavar"]}
        if sweep:
            kwargs.update(
                default=[] if m["repeat"] else sweep.default,
                help=sweep.help,
                metavar=sweep.metavar,
                type=p.argtype(sweep.parse or _comma_list(m["parse"], m["choices"])),
            )
            flags: tuple[str, ...] = (sweep.flag,)
        elif m["switch"]:
            parser.add_argument(*m["flags"], dest=f.name, action="store_true", help=m["help"])
            continue
        else:
            kwargs.update(default=[] if m["repeat"] else f.default, choices=m["choices"])
            if m["parse"]:
                kwargs["type"] = p.argtype(m["parse"])
            flags = m["flags"]
        parser.add_argument(*flags, action="append" if m["repeat"] else "store", **kwargs)


def _comma_list(
    parse: Callable[[str], Any] | None, choices: tuple[str, ...] | None
) -> Callable[[str], tuple[Any, ...]]:
    """A comma list of values, each checked as the option checks one; repeats dropped, order kept."""

    def parse_list(raw: str) -> tuple[Any, ...]:
        values = []
        for item in p.split(raw):
            if choices and item not in choices:
                raise ValueError(f"invalid choice: {item!r} (choose from {', '.join(choices)})")
            values.append(parse(item) if parse else item)
        if not values:
            raise ValueError(f"expected a value or a comma list of them, got {raw!r}")
        return tuple(dict.fromkeys(values))

    return parse_list
