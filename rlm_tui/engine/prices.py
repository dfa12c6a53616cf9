"""What a model call costs: prices per million tokens, shipped with their date, overridden by the user's."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlm_tui.engine.replies import ModelReply

PRICES_ENV = "RLM_TUI_PRICES"  # a user's price file, as --prices gives it
MAX_PRICE = 100_000.0  # USD per million tokens: anything above is a typo, not a price
MAX_FILE_BYTES = 1_000_000
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")  # gpt-5-mini-2025-08-07 costs what gpt-5-mini costs


class PriceError(Exception):
    """A price or price file that cannot be used; the message is one line."""


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cached_input: float | None = None  # None: cached prompt tokens cost as input

    def cost(self, prompt: int, completion: int, cached: int = 0) -> float:
        """USD for one call: cached prompt tokens at their rate, the rest of the prompt at input's."""
        cached = max(0, min(cached, prompt))
        rate = self.input if self.cached_input is None else self.cached_input
        return ((prompt - cached) * self.input + cached * rate + completion * self.output) / 1e6

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Price:
        if not isinstance(data, dict):
            raise PriceError(f"{where}: a price is an object with input and output, not {type(data).__name__}")
        values = {k: data.get(k) for k in ("input", "output", "cached_input")}
        for key, value in values.items():
            if value is None and key == "cached_input":
                continue
            if not _rate(value):
                raise PriceError(f"{where}: {key} must be a number of USD per million tokens, 0 to {MAX_PRICE:g}")
        return cls(input=float(data["input"]), output=float(data["output"]), cached_input=values["cached_input"])


def _rate(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= MAX_PRICE
    )


@dataclass(frozen=True)
class PriceTable:
    date: str
    prices: dict[str, Price]

    def price_of(self, model: str) -> Price | None:
        """The model's price: by its exact name, then without a provider prefix or a date suffix; None: unknown."""
        for name in (model, model.rsplit("/", 1)[-1]):
            for candidate in (name, _DATED.sub("", name)):
                if candidate in self.prices:
                    return self.prices[candidate]
        return None


def _table(data: Any, where: str) -> PriceTable:
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise PriceError(f'{where}: a price file is a JSON object with "models": {{MODEL: {{input, output}}}}')
    prices = {str(name)[:200]: Price.from_dict(p, f"{where}: {str(name)[:80]}") for name, p in data["models"].items()}
    date = data.get("date")
    return PriceTable(date=date[:40] if isinstance(date, str) else "", prices=prices)


def shipped() -> PriceTable:
    text = resources.files("rlm_tui.engine").joinpath("prices.json").read_text()
    return _table(json.loads(text), "the shipped prices")


def load(path: str | None = None, overrides: tuple[tuple[str, Price], ...] = ()) -> PriceTable:
    """The shipped table, then the user's file (`path`, else $RLM_TUI_PRICES), then the per-model overrides."""
    table = shipped()
    path = path or os.environ.get(PRICES_ENV) or None
    if path is not None:
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise PriceError(f"cannot read the price file {path}: {exc.strerror}") from None
        if len(raw) > MAX_FILE_BYTES:
            raise PriceError(f"the price file {path} is over {MAX_FILE_BYTES:,} bytes")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise PriceError(f"the price file {path} is not JSON: {exc}") from None
        user = _table(data, f"the price file {path}")
        table = PriceTable(date=user.date or table.date, prices={**table.prices, **user.prices})
    if overrides:
        table = PriceTable(date=table.date, prices={**table.prices, **dict(overrides)})
    return table


def parse_price(text: str) -> tuple[str, Price]:
    """MODEL=INPUT,OUTPUT or MODEL=INPUT,CACHED,OUTPUT in USD per million tokens (--price)."""
    model, sep, rates = text.partition("=")
    parts = rates.split(",")
    if not sep or not model.strip() or len(parts) not in (2, 3):
        raise ValueError(
            f"expected MODEL=INPUT,OUTPUT or MODEL=INPUT,CACHED,OUTPUT (USD per million tokens), got {text!r}"
        )
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"prices are numbers of USD per million tokens, got {rates!r}") from None
    if not all(_rate(n) for n in numbers):
        raise ValueError(f"each price must be 0 to {MAX_PRICE:g} USD per million tokens, got {rates!r}")
    if len(numbers) == 2:
        return model.strip(), Price(input=numbers[0], output=numbers[1])
    return model.strip(), Price(input=numbers[0], cached_input=numbers[1], output=numbers[2])


def call_cost(reply: ModelReply, price: Price | None) -> float | None:
    """The provider's own figure when it gave one, else the tokens at `price`; None when neither is known."""
    if reply.cost_usd is not None:
        return reply.cost_usd
    return None if price is None else price.cost(reply.prompt_tokens, reply.completion_tokens, reply.cached_tokens)
