"""`rlm-tui envs`: the environments and their knobs."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sub.add_parser("envs", help="list the environments and their knobs (--env-arg key=value)").set_defaults(
        handler=cmd_envs
    )


def cmd_envs(args: argparse.Namespace) -> int:
    from rlm_tui.env import ENVIRONMENTS, load_environment

    for name in ENVIRONMENTS:
        env = load_environment(name)
        print(name)
        if env.data_note:
            print(f"  data: {env.data_note}")
        for knob in env.knobs:
            default = "-n" if knob.default is None else "none" if knob.default == "" else knob.default
            print(f"  {knob.name:<22} default {default!s:<10} {knob.help}")
    return 0
