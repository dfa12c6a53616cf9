"""Problem templates by topic: each draws its numbers and returns the question and the Python that computes the answer."""

from __future__ import annotations

import random
from collections.abc import Callable

Template = Callable[[random.Random, int], tuple[str, str]]  # (rng, level 0-2) -> (question, code setting `result`)


def _combo(terms: list[tuple[int, str]]) -> str:
    """LaTeX of a sum of (coefficient, monomial) terms, e.g. [(3, "x"), (-1, "y")] -> 3x - y."""
    parts = []
    for c, mono in terms:
        if c:
            size = str(abs(c)) if abs(c) != 1 or not mono else ""
            parts.append(f"{'-' if c < 0 else '+'} {size}{mono}")
    text = " ".join(parts) or "0"
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def _poly(coeffs: list[int], var: str = "x") -> str:
    """LaTeX of a polynomial from its coefficients, highest degree first."""
    degree = len(coeffs) - 1
    monos = ["" if p == 0 else var if p == 1 else f"{var}^{{{p}}}" for p in range(degree, -1, -1)]
    return _combo(list(zip(coeffs, monos)))


def _nth(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _py_poly(coeffs: list[int]) -> str:
    degree = len(coeffs) - 1
    return " + ".join(f"({c})*x**{degree - i}" for i, c in enumerate(coeffs) if c) or "0"


# --- number theory ----------------------------------------------------------------------------


def divisor_count(rng: random.Random, level: int) -> tuple[str, str]:
    n = 1
    for p in rng.sample([2, 3, 5, 7, 11, 13], 2 + level):
        n *= p ** rng.randint(1, 3 + level)
    return (
        f"How many positive divisors does ${n}$ have?",
        f"from sympy import divisor_count\nresult = divisor_count({n})",
    )


def divisor_sum(rng: random.Random, level: int) -> tuple[str, str]:
    n = rng.randint(10 ** (2 + level), 10 ** (3 + level))
    return (
        f"What is the sum of all positive divisors of ${n}$?",
        f"from sympy import divisor_sigma\nresult = divisor_sigma({n})",
    )


def power_mod(rng: random.Random, level: int) -> tuple[str, str]:
    a, b, m = (
        rng.randint(2, 50),
        rng.randint(10 ** (1 + level), 10 ** (3 + 2 * level)),
        rng.randint(7, 10 ** (2 + level)),
    )
    return f"What is the remainder when ${a}^{{{b}}}$ is divided by ${m}$?", f"result = pow({a}, {b}, {m})"


def totient(rng: random.Random, level: int) -> tuple[str, str]:
    n = rng.randint(50, 10 ** (3 + level))
    return (
        f"How many integers $k$ with $1 \\le k \\le {n}$ satisfy $\\gcd(k, {n}) = 1$?",
        f"from sympy import totient\nresult = totient({n})",
    )


def chinese_remainder(rng: random.Random, level: int) -> tuple[str, str]:
    moduli = rng.sample([3, 5, 7, 11, 13, 17, 19, 23], 2 + level)
    residues = [rng.randrange(m) for m in moduli]
    conditions = ", ".join(f"$x \\equiv {r} \\pmod{{{m}}}$" for r, m in zip(residues, moduli))
    return (
        f"Find the smallest positive integer $x$ such that {conditions}.",
        f"from sympy.ntheory.modular import crt\nx, m = crt({moduli}, {residues})\nresult = x if x > 0 else m",
    )


def prime_count(rng: random.Random, level: int) -> tuple[str, str]:
    n = rng.randint(100, 10 ** (3 + level))
    return (
        f"How many prime numbers are less than or equal to ${n}$?",
        f"from sympy import primepi\nresult = primepi({n})",
    )


def factorial_zeros(rng: random.Random, level: int) -> tuple[str, str]:
    n = rng.randint(20, 10 ** (2 + level))
    return (
        f"How many zeros are at the end of the decimal representation of ${n}!$?",
        f"n, result = {n}, 0\nwhile n:  # factors of 5 in n!, each paired with a 2\n    n //= 5\n    result += n",
    )


def digit_sum(rng: random.Random, level: int) -> tuple[str, str]:
    a, b = rng.randint(2, 9), rng.randint(20, 60 * (level + 1))
    return f"What is the sum of the decimal digits of ${a}^{{{b}}}$?", f"result = sum(int(d) for d in str({a} ** {b}))"


# --- combinatorics ----------------------------------------------------------------------------


def committee(rng: random.Random, level: int) -> tuple[str, str]:
    n = rng.randint(8, 15 + 10 * level)
    k = rng.randint(2, n // 2)
    return (
        f"In how many ways can a committee of {k} people be chosen from a group of {n} people?",
        f"from math import comb\nresult = comb({n}, {k})",
    )


def arrangements(rng: random.Random, level: int) -> tuple[str, str]:
    letters = rng.sample("ABCDEGKLMNPRST", 3 + level)
    word = "".join(c * rng.randint(1, 3) for c in letters)
    word = "".join(rng.sample(word, len(word)))
    return (
        f"How many distinct strings can be formed by rearranging all the letters of {word}?",
        f"from math import factorial\nfrom collections import Counter\nresult = factorial({len(word)})\n"
        f"for count in Counter({word!r}).values():\n    result //= factorial(count)",
    )


def derangements(rng: random.Random, level: int) -> tuple[str, str]:
    n = rng.randint(4, 7 + 3 * level)
    return (
        f"{n} letters are put into {n} addressed envelopes, one per envelope. In how many ways can this be done "
        "so that no letter is in its own envelope?",
        f"from sympy import subfactorial\nresult = subfactorial({n})",
    )


def lattice_paths(rng: random.Random, level: int) -> tuple[str, str]:
    a, b = rng.randint(3, 6 + 2 * level), rng.randint(3, 6 + 2 * level)
    c, d = rng.randint(1, a - 1), rng.randint(1, b - 1)
    return (
        f"How many paths go from $(0, 0)$ to $({a}, {b})$ with unit steps right or up and pass through $({c}, {d})$?",
        f"from math import comb\nresult = comb({c + d}, {c}) * comb({a - c + b - d}, {a - c})",
    )


def positive_solutions(rng: random.Random, level: int) -> tuple[str, str]:
    k, n = rng.randint(3, 4 + level), rng.randint(10, 20 + 10 * level)
    variables = " + ".join(f"x_{i}" for i in range(1, k + 1))
    return (
        f"How many solutions in positive integers does ${variables} = {n}$ have?",
        f"ways = [1] + [0] * {n}  # ways[s]: ordered sums of s with the parts so far\n"
        f"for _ in range({k}):\n    ways = [sum(ways[s - v] for v in range(1, s + 1)) for s in range({n + 1})]\n"
        f"result = ways[{n}]",
    )


def non_adjacent(rng: random.Random, level: int) -> tuple[str, str]:
    n = rng.randint(8, 12 + 3 * level)
    k = rng.randint(2, (n + 1) // 2 - 1)
    return (
        f"In how many ways can {k} of {n} chairs in a row be chosen so that no two chosen chairs are adjacent?",
        f"from itertools import combinations\nresult = sum(1 for c in combinations(range({n}), {k}) "
        f"if all(b - a > 1 for a, b in zip(c, c[1:])))",
    )


def catalan(rng: random.Random, level: int) -> tuple[str, str]:
    n = rng.randint(4, 8 + 4 * level)
    return (
        f"How many strings of {n} pairs of parentheses are balanced?",
        f"from sympy import catalan\nresult = catalan({n})",
    )


def surjections(rng: random.Random, level: int) -> tuple[str, str]:
    k = rng.randint(2, 3 + level)
    n = rng.randint(k + 1, k + 3 + level)
    return (
        f"In how many ways can {n} distinct balls be put into {k} distinct boxes so that no box is empty?",
        f"from math import factorial\nfrom sympy.functions.combinatorial.numbers import stirling\n"
        f"result = factorial({k}) * stirling({n}, {k})",
    )


# --- algebra ----------------------------------------------------------------------------------


def linear_system(rng: random.Random, level: int) -> tuple[str, str]:
    span = 5 + 5 * level
    while True:
        a, b, d, e = (rng.randint(-span, span) for _ in range(4))
        if a * b * d * e and a * e - b * d:
            break
    c, f = rng.randint(-20, 20), rng.randint(-20, 20)
    return (
        f"Solve the system ${_combo([(a, 'x'), (b, 'y')])} = {c}$, ${_combo([(d, 'x'), (e, 'y')])} = {f}$. "
        "Give the answer as an ordered pair $(x, y)$.",
        "from sympy import symbols, solve\nx, y = symbols('x y')\n"
        f"s = solve([{a}*x + {b}*y - ({c}), {d}*x + {e}*y - ({f})], [x, y])\nresult = (s[x], s[y])",
    )


def larger_root(rng: random.Random, level: int) -> tuple[str, str]:
    while True:
        b, c = rng.randint(-10 - 5 * level, 10 + 5 * level), rng.randint(-30, 30)
        disc = b * b - 4 * c
        if disc > 0 and int(disc**0.5) ** 2 != disc:
            break
    return (
        f"What is the larger root of ${_poly([1, b, c])} = 0$?",
        "from sympy import symbols, solve\nx = symbols('x')\n"
        f"result = max(solve(x**2 + ({b})*x + ({c}), x), key=float)",
    )


def root_squares(rng: random.Random, level: int) -> tuple[str, str]:
    roots = [rng.randint(-6, 6) for _ in range(3 + level)]
    coeffs = [1]
    for r in roots:  # multiply by (x - r)
        coeffs = [a - r * b for a, b in zip(coeffs + [0], [0] + coeffs)]
    return (
        f"What is the sum of the squares of the roots (with multiplicity) of ${_poly(coeffs)}$?",
        f"from sympy import symbols, roots, Poly\nx = symbols('x')\nr = roots(Poly({_py_poly(coeffs)}, x))\n"
        "result = sum(m * s**2 for s, m in r.items())",
    )


def real_roots(rng: random.Random, level: int) -> tuple[str, str]:
    roots = rng.sample(range(-7, 8), 3)
    coeffs = [1]
    for r in roots:
        coeffs = [a - r * b for a, b in zip(coeffs + [0], [0] + coeffs)]
    if level:
        coeffs = [c * (level + 1) for c in coeffs]
    return (
        f"Find all real solutions of ${_poly(coeffs)} = 0$. Give them as a set, e.g. $\\{{1, 2, 3\\}}$.",
        f"from sympy import symbols, solveset, S\nx = symbols('x')\n"
        f"result = frozenset(solveset({_py_poly(coeffs)}, x, domain=S.Reals))",
    )


def geometric_sum(rng: random.Random, level: int) -> tuple[str, str]:
    a, p, q, n = rng.randint(1, 9), rng.randint(1, 4), rng.randint(5, 9), rng.randint(4, 8 + 4 * level)
    return (
        f"Compute $\\sum_{{k=0}}^{{{n}}} {a} \\left(\\frac{{{p}}}{{{q}}}\\right)^k$ as an exact fraction.",
        f"from sympy import Rational, summation, symbols\nk = symbols('k', integer=True)\n"
        f"result = summation({a} * Rational({p}, {q})**k, (k, 0, {n}))",
    )


def inverse_value(rng: random.Random, level: int) -> tuple[str, str]:
    while True:
        a, b, c, d = (rng.randint(-9, 9) for _ in range(4))
        if c and a * d - b * c:
            break
    t = rng.randint(-5, 5)
    if t * c == a:
        t += 1
    return (
        f"Let $f(x) = \\frac{{{_poly([a, b])}}}{{{_poly([c, d])}}}$. What is $f^{{-1}}({t})$?",
        "from sympy import symbols, solve\ny = symbols('y')\n"
        f"result = solve(({a}*y + {b}) - ({t})*({c}*y + {d}), y)[0]",
    )


def arithmetic_term(rng: random.Random, level: int) -> tuple[str, str]:
    i, j = sorted(rng.sample(range(1, 15), 2))
    p, q, m = rng.randint(-50, 50), rng.randint(-50, 50), rng.randint(16, 40 + 40 * level)
    return (
        f"The {_nth(i)} term of an arithmetic sequence is ${p}$ and its {_nth(j)} term is ${q}$. "
        f"What is its {_nth(m)} term?",
        "from sympy import symbols, solve\na, d = symbols('a d')\n"
        f"s = solve([a + {i - 1}*d - ({p}), a + {j - 1}*d - ({q})], [a, d])\nresult = s[a] + {m - 1}*s[d]",
    )


# --- calculus ---------------------------------------------------------------------------------


def poly_integral(rng: random.Random, level: int) -> tuple[str, str]:
    coeffs = [rng.randint(-9, 9) for _ in range(3 + level)]
    coeffs[0] = coeffs[0] or 1
    a = rng.randint(-3, 1)
    b = a + rng.randint(1, 4)
    return (
        f"Compute $\\int_{{{a}}}^{{{b}}} \\left({_poly(coeffs)}\\right) dx$.",
        "from sympy import symbols, integrate\nx = symbols('x')\n"
        f"result = integrate({_py_poly(coeffs)}, (x, {a}, {b}))",
    )


def exp_integral(rng: random.Random, level: int) -> tuple[str, str]:
    k, n = rng.randint(1, 3), rng.randint(1, 1 + level)
    return (
        f"Compute $\\int_0^1 x{'' if n == 1 else f'^{n}'} e^{{{k}x}} \\, dx$ exactly.",
        f"from sympy import symbols, integrate, exp, simplify\nx = symbols('x')\n"
        f"result = simplify(integrate(x**{n} * exp({k}*x), (x, 0, 1)))",
    )


def trig_integral(rng: random.Random, level: int) -> tuple[str, str]:
    n, m = rng.randint(1, 2 + level), rng.choice([1, 2, 4])
    return (
        f"Compute $\\int_0^{{\\pi / {m}}} \\sin^{{{2 * n}}}(x) \\, dx$ exactly."
        if m > 1
        else f"Compute $\\int_0^{{\\pi}} \\sin^{{{2 * n}}}(x) \\, dx$ exactly.",
        f"from sympy import symbols, integrate, sin, pi, simplify\nx = symbols('x')\n"
        f"result = simplify(integrate(sin(x)**{2 * n}, (x, 0, pi / {m})))",
    )


def derivative_at(rng: random.Random, level: int) -> tuple[str, str]:
    a, b, t = rng.randint(1, 9), rng.randint(1, 9), rng.randint(-3, 5)
    if t == -b:
        t += 1
    power = 1 + level
    return (
        f"Let $f(x) = \\frac{{x^{{{power + 1}}} + {a}}}{{x + {b}}}$. What is $f'({t})$?",
        "from sympy import symbols, diff\nx = symbols('x')\n"
        f"result = diff((x**{power + 1} + {a}) / (x + {b}), x).subs(x, {t})",
    )


def trig_limit(rng: random.Random, level: int) -> tuple[str, str]:
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    if level == 0:
        return (
            f"Compute $\\lim_{{x \\to 0}} \\frac{{\\sin({a}x)}}{{\\sin({b}x)}}$.",
            f"from sympy import symbols, limit, sin\nx = symbols('x')\nresult = limit(sin({a}*x) / sin({b}*x), x, 0)",
        )
    if level == 1:
        return (
            f"Compute $\\lim_{{x \\to 0}} \\frac{{1 - \\cos({a}x)}}{{{b}x^2}}$.",
            "from sympy import symbols, limit, cos\nx = symbols('x')\n"
            f"result = limit((1 - cos({a}*x)) / ({b}*x**2), x, 0)",
        )
    return (
        f"Compute $\\lim_{{x \\to \\infty}} \\left(1 + \\frac{{{a}}}{{x}}\\right)^{{{b}x}}$.",
        f"from sympy import symbols, limit, oo\nx = symbols('x')\nresult = limit((1 + {a}/x)**({b}*x), x, oo)",
    )


def area_between(rng: random.Random, level: int) -> tuple[str, str]:
    k, c = rng.randint(1, 6 + 3 * level), rng.randint(1, 3)
    return (
        f"What is the area of the region enclosed by $y = {c if c > 1 else ''}x^2$ and $y = {k}x$?",
        f"from sympy import symbols, integrate, solve\nx = symbols('x')\nends = sorted(solve({c}*x**2 - {k}*x, x))\n"
        f"result = integrate({k}*x - {c}*x**2, (x, ends[0], ends[1]))",
    )


def telescoping(rng: random.Random, level: int) -> tuple[str, str]:
    k = rng.randint(1, 4 + 3 * level)
    return (
        f"Compute $\\sum_{{n=1}}^{{\\infty}} \\frac{{1}}{{n(n + {k})}}$ exactly.",
        f"from sympy import symbols, summation, oo, simplify\nn = symbols('n', integer=True, positive=True)\n"
        f"result = simplify(summation(1 / (n * (n + {k})), (n, 1, oo)))",
    )


# --- probability ------------------------------------------------------------------------------


def dice_sum(rng: random.Random, level: int) -> tuple[str, str]:
    dice = 2 + level
    s = rng.randint(dice + 1, 6 * dice - 1)
    return (
        f"{dice} fair six-sided dice are rolled. What is the probability that their sum is {s}?",
        f"from fractions import Fraction\nfrom itertools import product\n"
        f"result = Fraction(sum(1 for r in product(range(1, 7), repeat={dice}) if sum(r) == {s}), 6**{dice})",
    )


def at_least_one(rng: random.Random, level: int) -> tuple[str, str]:
    n, face = rng.randint(2, 4 + 3 * level), rng.randint(1, 6)
    return (
        f"A fair die is rolled {n} times. What is the probability that a {face} comes up at least once?",
        f"from fractions import Fraction\nresult = 1 - Fraction(5, 6)**{n}",
    )


def urn(rng: random.Random, level: int) -> tuple[str, str]:
    red, blue = rng.randint(3, 8 + 4 * level), rng.randint(3, 8 + 4 * level)
    k = rng.randint(2, min(red, blue, 3 + level))
    j = rng.randint(1, k)
    return (
        f"An urn holds {red} red and {blue} blue balls. {k} balls are drawn at random without replacement. "
        f"What is the probability that exactly {j} of them are red?",
        f"from fractions import Fraction\nfrom math import comb\n"
        f"result = Fraction(comb({red}, {j}) * comb({blue}, {k - j}), comb({red + blue}, {k}))",
    )


def biased_coin(rng: random.Random, level: int) -> tuple[str, str]:
    p, q = rng.randint(1, 4), rng.randint(5, 7)
    n = rng.randint(3, 6 + 3 * level)
    k = rng.randint(1, n - 1)
    return (
        f"A coin lands heads with probability $\\frac{{{p}}}{{{q}}}$. It is flipped {n} times. What is the "
        f"probability of exactly {k} heads?",
        f"from fractions import Fraction\nfrom math import comb\np = Fraction({p}, {q})\n"
        f"result = comb({n}, {k}) * p**{k} * (1 - p)**{n - k}",
    )


def expected_max(rng: random.Random, level: int) -> tuple[str, str]:
    dice, sides = 2 + level, rng.choice([4, 6, 8, 10])
    return (
        f"{dice} fair {sides}-sided dice (faces 1 to {sides}) are rolled. What is the expected value of the "
        "largest number shown?",
        f"from fractions import Fraction\nfrom itertools import product\n"
        f"rolls = list(product(range(1, {sides + 1}), repeat={dice}))\n"
        "result = Fraction(sum(max(r) for r in rolls), len(rolls))",
    )


def heads_run(rng: random.Random, level: int) -> tuple[str, str]:
    k, p, q = rng.randint(2, 3 + level), rng.randint(1, 2), 3
    return (
        f"A coin lands heads with probability $\\frac{{{p}}}{{{q}}}$. What is the expected number of flips until "
        f"{k} heads in a row first appear?",
        f"from sympy import Rational, symbols, solve\np = Rational({p}, {q})\nE = symbols('E0:{k}')\n"
        f"eqs = [E[i] - (1 + p * (E[i + 1] if i + 1 < {k} else 0) + (1 - p) * E[0]) for i in range({k})]\n"
        "result = solve(eqs, E)[E[0]]",
    )


def distinct_rolls(rng: random.Random, level: int) -> tuple[str, str]:
    sides, n = rng.choice([6, 8, 10, 12]), rng.randint(3, 4 + level)
    return (
        f"A fair {sides}-sided die is rolled {n} times. What is the probability that all {n} results differ?",
        f"from fractions import Fraction\nfrom math import perm\nresult = Fraction(perm({sides}, {n}), {sides}**{n})",
    )


TOPICS: dict[str, list[Template]] = {
    "number_theory": [
        divisor_count,
        divisor_sum,
        power_mod,
        totient,
        chinese_remainder,
        prime_count,
        factorial_zeros,
        digit_sum,
    ],
    "combinatorics": [
        committee,
        arrangements,
        derangements,
        lattice_paths,
        positive_solutions,
        non_adjacent,
        catalan,
        surjections,
    ],
    "algebra": [linear_system, larger_root, root_squares, real_roots, geometric_sum, inverse_value, arithmetic_term],
    "calculus": [poly_integral, exp_integral, trig_integral, derivative_at, trig_limit, area_between, telescoping],
    "probability": [dice_sum, at_least_one, urn, biased_coin, expected_max, heads_run, distinct_rolls],
}
