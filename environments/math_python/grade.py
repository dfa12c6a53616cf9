"""Math answers: the last \\boxed{...}, a small LaTeX parser into sympy, and an equivalence check with a time limit."""

from __future__ import annotations

import math
import re
import threading

import sympy

from environments.boxed import last_boxed

MAX_CHARS = 1000  # longer answers are not parsed: a bound on the work one answer can cause
MAX_DIGITS = 5000  # integer powers and factorials beyond this many digits are refused, not computed
TIMEOUT = 5.0  # seconds for one equivalence check


# --- normalising ------------------------------------------------------------------------------

_DROP = (
    r"\left",
    r"\right",
    r"\displaystyle",
    r"\!",
    r"\,",
    r"\;",
    r"\:",
    r"\ ",
    "$",
    "~",
    r"\%",
    "%",
    r"^{\circ}",
    r"^\circ",
    r"\circ",
)
_SAME = {
    r"\dfrac": r"\frac",
    r"\tfrac": r"\frac",
    r"\cdot": "*",
    r"\times": "*",
    r"\div": "/",
    "**": "^",
    "·": "*",
    "×": "*",
    "−": "-",
    "π": r"\pi",
    "√": r"\sqrt",
    "∞": r"\infty",
    r"\lbrace": r"\{",
    r"\rbrace": r"\}",
    r"\operatorname": "",
}
_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")


def normalize(text: str) -> str:
    for old, new in _SAME.items():
        text = text.replace(old, new)
    for junk in _DROP:
        text = text.replace(junk, "")
    words_only = _TEXT.sub(lambda m: m.group(1) if not re.fullmatch(r"[A-Za-z\s.]*", m.group(1)) else "", text)
    text = words_only if words_only.strip() else _TEXT.sub(lambda m: m.group(1), text)  # units go, a lone word stays
    text = text.strip().rstrip(".").strip()
    if "=" in text:
        left, right = text.rsplit("=", 1)
        if _top_level_commas(right) or not _top_level_commas(left):
            text = right  # "x = 5", "(x, y) = (1, 2)"
        else:
            text = ",".join(part.rsplit("=", 1)[-1] for part in _split_commas(text))  # "x = 1, y = 2"
    return text.strip()


# --- parsing ----------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*|\.\d+)|(\\[A-Za-z]+|\\\{|\\\})|([A-Za-z])|([-+*/^(){}\[\],_!|]))")
_FUNCS = {
    r"\sin": sympy.sin,
    r"\cos": sympy.cos,
    r"\tan": sympy.tan,
    r"\ln": sympy.log,
    r"\log": sympy.log,
    r"\exp": sympy.exp,
    r"\arcsin": sympy.asin,
    r"\arccos": sympy.acos,
    r"\arctan": sympy.atan,
}
_CONSTS = {r"\pi": sympy.pi, r"\infty": sympy.oo, "e": sympy.E, "i": sympy.I}


def tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ValueError(f"unexpected {text[pos : pos + 10]!r}")
        tokens.append(next(g for g in match.groups() if g is not None))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens: + - * / ^, implicit products, \\frac, \\sqrt, functions, constants."""

    def __init__(self, tokens: list[str]):
        self.tokens, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise ValueError(f"expected {expected or 'more'}, got {token!r}")
        self.i += 1
        return token

    def done(self) -> sympy.Expr:
        value = self.expr()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()!r}")
        return value

    def expr(self) -> sympy.Expr:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        return value

    def _starts_atom(self, token: str | None) -> bool:
        if token is None:
            return False
        return (
            token[0].isdigit()
            or token[0] == "."
            or token.isalpha()
            or token in ("(", "{", "[", "|")
            or (token.startswith("\\") and token not in (r"\}",))
        )

    def term(self) -> sympy.Expr:
        value = self.unary()
        while True:
            token = self.peek()
            if token in ("*", "/"):
                self.take()
                right = self.unary()
                value = value * right if token == "*" else value / right
            elif self._starts_atom(token) and token != "|":
                if token[0].isdigit() and self.tokens[self.i - 1][0].isdigit():
                    raise ValueError("two numbers in a row")
                value = value * self.power()
            else:
                return value

    def unary(self) -> sympy.Expr:
        if self.peek() in ("-", "+"):
            return -self.unary() if self.take() == "-" else self.unary()
        return self.power()

    def power(self) -> sympy.Expr:
        base = self.postfix(self.atom())
        if self.peek() != "^":
            return base
        self.take()
        exponent = self.group() if self.peek() == "{" else self.unary()
        return _pow(base, exponent)

    def postfix(self, value: sympy.Expr) -> sympy.Expr:
        while self.peek() == "!":
            self.take()
            if not (value.is_Integer and 0 <= value <= 1500):
                raise ValueError("factorial of a non-integer or a large number")
            value = sympy.factorial(value)
        return value

    def group(self) -> sympy.Expr:
        """An argument of \\frac or \\sqrt: {expr}, or a single token as in \\frac12."""
        token = self.peek()
        if token == "{":
            self.take()
            value = self.expr()
            self.take("}")
            return value
        if token is not None and token.isdigit() and len(token) > 1:
            self.tokens[self.i] = token[1:]
            return sympy.Integer(token[0])
        return self.atom()

    def atom(self) -> sympy.Expr:
        token = self.take()
        closing = {"(": ")", "{": "}", "[": "]", "|": "|"}
        if token in closing:
            value = self.expr()
            self.take(closing[token])
            return abs(value) if token == "|" else value
        if token[0].isdigit() or token[0] == ".":
            return sympy.Rational(token)  # exact: 0.5 is 1/2
        if token == r"\frac":
            num = self.group()
            return num / self.group()
        if token == r"\sqrt":
            if self.peek() == "[":
                self.take()
                index = self.expr()
                self.take("]")
                return _pow(self.group(), 1 / index)
            return sympy.sqrt(self.group())
        if token in _FUNCS:
            return self._function(token)
        if token in _CONSTS:
            return _CONSTS[token]
        if len(token) == 1 and token.isalpha():
            return sympy.Symbol(token)
        raise ValueError(f"unknown {token!r}")

    def _function(self, name: str) -> sympy.Expr:
        base = None
        if name == r"\log" and self.peek() == "_":
            self.take()
            base = self.group()
        exponent = None
        if self.peek() == "^":  # \sin^2 x
            self.take()
            exponent = self.group()
        arg = self.atom() if self.peek() in ("(", "{", "[") else self.unary()
        value = sympy.log(arg, base) if base is not None else _FUNCS[name](arg)
        return _pow(value, exponent) if exponent is not None else value


def _pow(base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
    """base ** exponent, refusing integer powers too large to compute."""
    if base.is_number and exponent.is_number and exponent.is_real:
        size = abs(float(exponent)) * math.log10(max(2.0, abs(complex(base.evalf(15)))))
        if size > MAX_DIGITS:
            raise ValueError("power too large")
    return base**exponent


def parse(text: str) -> tuple[str, list[sympy.Expr]]:
    """(kind, values): kind is "one", "tuple" (ordered), "set" (unordered) or "list" (a bare comma list)."""
    text = normalize(text)
    if not text or len(text) > MAX_CHARS:
        raise ValueError("empty or too long")
    if re.search(r"(?<![\\A-Za-z])[A-Za-z]{3,}", text):
        raise ValueError("words, not math")  # compared as text: a word is not a product of letters
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", text):
        text = text.replace(",", "")  # 1,000,000
    kind = "one"
    if text.startswith(r"\{") and text.endswith(r"\}"):
        kind, text = "set", text[2:-2]
    elif text[0] in "([" and text[-1] in ")]" and _top_level_commas(text[1:-1]):
        kind, text = "tuple", text[1:-1]
    elif _top_level_commas(text):
        kind = "list"
    parts = _split_commas(text) if kind != "one" else [text]
    return kind, [_Parser(tokenize(p)).done() for p in parts if p.strip()]


def _split_commas(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return parts + [text[start:]]


def _top_level_commas(text: str) -> bool:
    return len(_split_commas(text)) > 1


# --- comparing --------------------------------------------------------------------------------


def same_value(a: sympy.Expr, b: sympy.Expr) -> bool:
    if a.is_infinite or b.is_infinite or a.has(sympy.zoo, sympy.nan) or b.has(sympy.zoo, sympy.nan):
        return a == b
    if a.free_symbols or b.free_symbols:
        return sympy.simplify(a - b) == 0
    diff = complex(sympy.N(a - b, 30))
    return abs(diff) <= 1e-9 * max(1.0, abs(complex(sympy.N(b, 30))))


def same_answer(answer: tuple[str, list], gold: tuple[str, list]) -> bool:
    (kind, values), (gold_kind, gold_values) = answer, gold
    if len(values) != len(gold_values):
        return False
    if kind == "one" or gold_kind == "one":
        return kind == gold_kind and same_value(values[0], gold_values[0])
    ordered = "set" not in (kind, gold_kind) and not (kind == "list" and gold_kind == "list")
    if ordered:
        return all(same_value(a, b) for a, b in zip(values, gold_values))
    left = list(gold_values)
    for a in values:  # each answer item must match a distinct gold item
        match = next((k for k, b in enumerate(left) if same_value(a, b)), None)
        if match is None:
            return False
        left.pop(match)
    return True


def _plain(text: str) -> str:
    return re.sub(r"\s+", "", normalize(text)).lower()


def check(response_text: str, gold_text: str) -> bool:
    """Whether the last boxed answer of the response equals the gold (boxed or bare); parse failures compare as text."""
    answer = last_boxed(response_text)
    if answer is None:
        return False
    gold = last_boxed(gold_text) or gold_text
    try:
        return same_answer(parse(answer), parse(gold))
    except Exception:  # an answer the parser cannot read may still match the gold word for word
        return bool(_plain(answer)) and _plain(answer) == _plain(gold)


def check_bounded(response_text: str, gold_text: str, timeout: float = TIMEOUT) -> bool:
    """`check` on a daemon thread: an answer that takes longer than `timeout` seconds scores as wrong."""
    result: list[bool] = []

    def work() -> None:
        try:
            result.append(check(response_text, gold_text))
        except Exception:
            result.append(False)

    thread = threading.Thread(target=work, daemon=True, name="math-grade")
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])
