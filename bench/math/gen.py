#!/usr/bin/env python3
"""Seeded generator of MATH-style (gold, prediction) pairs whose label is known by construction.

Each pair starts from a gold answer of one family (integers, fractions, surds, multiples of pi,
logarithms, percents, units, polynomials, points, sets, intervals, vectors, matrices, complex
numbers) and applies either a rewrite that keeps the value (an equivalent prediction) or a
mutation that changes it (a near miss: sign flip, off by one, swapped entries, reciprocal,
open/closed end, dropped element, wrong unit, rounding to two places, ...). Only exact rewrites are
used: nothing here depends on a tolerance or a convention (no rounded decimals counted as equal, no
percent sign dropped), so the label is the mathematics.

    python3 bench/math/gen.py [--seed 17] [--n 2400] > generated.jsonl

Lines: {"gold", "prediction", "equivalent", "family", "kind"}; the prediction is a whole
completion (the answer boxed, or after "The final answer is"). Same seed, same file.
"""

import argparse
import json
import random
from fractions import Fraction
from math import gcd


def frac_tex(f: Fraction, style: str = "frac") -> str:
    if f.denominator == 1:
        return str(f.numerator)
    sign = "-" if f < 0 else ""
    n, d = abs(f.numerator), f.denominator
    if style == "slash":
        return f"{sign}{n}/{d}"
    cmd = {"frac": "\\frac", "dfrac": "\\dfrac", "tfrac": "\\tfrac"}[style]
    return f"{sign}{cmd}{{{n}}}{{{d}}}"


def terminating_decimal(f: Fraction):
    d = f.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d != 1:
        return None
    k = 0
    while (f * 10**k).denominator != 1:
        k += 1
    s = f"{abs(float(f)):.{k}f}" if k else str(abs(f.numerator))
    return ("-" if f < 0 else "") + s


def coef(c: int, var: str) -> str:
    if c == 1:
        return var
    if c == -1:
        return "-" + var
    return f"{c}{var}"


def poly_tex(cs, var="x"):
    """cs: coefficients from the highest degree down."""
    deg = len(cs) - 1
    out = ""
    for i, c in enumerate(cs):
        e = deg - i
        if c == 0:
            continue
        mono = "" if e == 0 else (var if e == 1 else f"{var}^{e}")
        term = str(abs(c)) if (e == 0 or abs(c) != 1) else ""
        term += mono
        if not out:
            out = ("-" if c < 0 else "") + term
        else:
            out += ("-" if c < 0 else "+") + term
    return out or "0"


def lin(a: int) -> str:
    """x + a, written the usual way."""
    return "x" if a == 0 else (f"x+{a}" if a > 0 else f"x-{-a}")


class Gen:
    def __init__(self, rng: random.Random):
        self.r = rng

    def nz(self, lo, hi):
        while True:
            v = self.r.randint(lo, hi)
            if v != 0:
                return v

    # Each family returns (gold, [(kind, prediction, equivalent), ...]).

    def integer(self):
        r = self.r
        n = r.choice([r.randint(-99, 999), r.randint(1000, 99999)])
        k = r.randint(2, 9)
        rw = [("frac", f"\\frac{{{n * k}}}{{{k}}}", True), ("decimal_zero", f"{n}.0", True),
              ("assignment", f"x = {n}", True), ("sum", f"{n - 7} + 7", True)]
        if abs(n) >= 1000:
            rw.append(("thousands", f"{n:,}", True))
        if n > 0:
            rw.append(("root_of_square", f"\\sqrt{{{n * n}}}", True))
        mu = [("plus_one", str(n + 1), False), ("minus_one", str(n - 1), False), ("times_ten", str(10 * n), False)]
        if n != 0:
            mu.append(("sign_flip", str(-n), False))
        s = str(abs(n))
        if len(s) >= 2 and s[-1] != s[-2]:
            sw = s[:-2] + s[-1] + s[-2]
            mu.append(("swapped_digits", ("-" if n < 0 else "") + sw.lstrip("0") if sw.lstrip("0") else "0", False))
        return str(n), rw + mu

    def fraction(self):
        r = self.r
        while True:
            q = r.randint(2, 24)
            p = self.nz(-30, 30)
            f = Fraction(p, q)
            if f.denominator > 1:
                break
        g = frac_tex(f)
        k = r.randint(2, 6)
        rw = [("dfrac", frac_tex(f, "dfrac"), True), ("slash", frac_tex(f, "slash"), True),
              ("unreduced", ("-" if f < 0 else "") + f"\\frac{{{abs(f.numerator) * k}}}{{{f.denominator * k}}}", True),
              ("sign_in_numerator", f"\\frac{{{f.numerator}}}{{{f.denominator}}}", True)]
        dec = terminating_decimal(f)
        if dec:
            rw.append(("decimal", dec, True))
        if abs(f) > 1:
            w = abs(f.numerator) // f.denominator
            rest = Fraction(abs(f.numerator) - w * f.denominator, f.denominator)
            if rest:
                rw.append(("mixed", ("-" if f < 0 else "") + f"{w}\\frac{{{rest.numerator}}}{{{rest.denominator}}}", True))
        mu = [("sign_flip", frac_tex(-f), False), ("numerator_plus_one", frac_tex(Fraction(f.numerator + 1, f.denominator)) if f.numerator + 1 != 0 else "1", False),
              ("denominator_plus_one", frac_tex(Fraction(f.numerator, f.denominator + 1)), False)]
        if abs(f) != 1:
            mu.append(("reciprocal", frac_tex(1 / f), False))
        if not dec:
            two = f"{float(f):.2f}"
            if Fraction(two) != f:
                mu.append(("rounded_two_places", two, False))
        # mutations must really change the value
        mu = [(k_, p_, e) for (k_, p_, e) in mu if p_ != g]
        return g, rw + mu

    def surd(self):
        r = self.r
        b = r.choice([2, 3, 5, 6, 7, 10, 11, 13, 14, 15])
        a = r.randint(2, 9)
        g = f"{a}\\sqrt{{{b}}}"
        rw = [("inside", f"\\sqrt{{{a * a * b}}}", True), ("reordered", f"\\sqrt{{{b}}} \\cdot {a}", True),
              ("over_root", f"\\frac{{{a * b}}}{{\\sqrt{{{b}}}}}", True), ("power_half", f"{a}\\cdot {b}^{{1/2}}", True)]
        mu = [("dropped_root", f"{a * b}", False), ("plus_one", f"{a + 1}\\sqrt{{{b}}}", False),
              ("all_inside", f"\\sqrt{{{a * b}}}", False), ("sign_flip", f"-{a}\\sqrt{{{b}}}", False)]
        if a != b:
            mu.append(("swapped", f"{b}\\sqrt{{{a}}}", False))
        return g, rw + mu

    def pi_multiple(self):
        r = self.r
        while True:
            f = Fraction(r.randint(1, 11), r.randint(1, 12))
            if f != 1:
                break
        n, d = f.numerator, f.denominator
        g = f"\\frac{{{n}\\pi}}{{{d}}}" if d > 1 else f"{n}\\pi"
        rw = [("coefficient_out", (f"\\frac{{{n}}}{{{d}}}\\pi" if d > 1 else f"{n} \\pi"), True),
              ("times", f"{frac_tex(f)} \\cdot \\pi", True)]
        mu = [("inverted", f"\\frac{{{d}\\pi}}{{{n}}}" if n > 1 else f"{d}\\pi", False),
              ("numerator_plus_one", f"\\frac{{{n + 1}\\pi}}{{{d}}}" if d > 1 else f"{n + 1}\\pi", False),
              ("dropped_pi", frac_tex(f), False), ("sign_flip", "-" + g, False)]
        mu = [m for m in mu if not (m[0] == "inverted" and d == n)]
        return g, rw + mu

    def logarithm(self):
        r = self.r
        b = r.choice([2, 3, 5, 10])
        k = r.randint(2, 6 if b < 10 else 4)
        g = str(k)
        rw = [("log", f"\\log_{{{b}}} {b ** k}", True), ("power_rule", f"{k}\\log_{{{b}}} {b}", True)]
        mu = [("log_off_by_one", f"\\log_{{{b}}} {b ** (k + 1)}", False), ("exponent_form", f"{b}^{{{k}}}", False)]
        return g, rw + mu

    def percent(self):
        r = self.r
        n = r.randint(1, 99)
        f = Fraction(n, 100)
        g = f"{n}\\%"
        rw = [("as_fraction", frac_tex(f), True), ("as_decimal", terminating_decimal(f), True), ("spelled", f"{n} \\%", True)]
        mu = [("tenfold", f"{n * 10 if n * 10 != 100 else 110}\\%", False), ("complement", f"{100 - n}\\%", False) if n != 50 else ("plus_one", f"{n + 1}\\%", False),
              ("hundredth_twice", terminating_decimal(f / 100), False)]
        return g, rw + mu

    def unit(self):
        r = self.r
        n = r.randint(2, 500)
        units = [("cm", "centimeters", "m"), ("m", "meters", "km"), ("kg", "kilograms", "g"), ("inches", "in", "feet")]
        u, alias, wrong = r.choice(units)
        g = f"{n}\\text{{ {u}}}"
        rw = [("alias", f"{n}\\text{{ {alias}}}", True), ("spacing", f"{n} \\text{{ {u}}}", True)]
        mu = [("wrong_unit", f"{n}\\text{{ {wrong}}}", False), ("off_by_one", f"{n + 1}\\text{{ {u}}}", False)]
        return g, rw + mu

    def polynomial(self):
        r = self.r
        a, b = self.nz(-9, 9), self.nz(-9, 9)
        g = poly_tex([1, a + b, a * b])
        rw = [("factored", f"({lin(a)})({lin(b)})", True), ("reversed_factors", f"({lin(b)})({lin(a)})", True)]
        if a == b:
            rw.append(("square", f"({lin(a)})^2", True))
        # (x-a)(x-b) is the gold itself when a = -b: then it is not a mutation
        mu = [("factor_signs", f"({lin(-a)})({lin(-b)})", False)] if a + b != 0 else []
        mu += [("constant_off_by_one", poly_tex([1, a + b, a * b + 1]), False),
              ("linear_sign", poly_tex([1, -(a + b), a * b]) if a + b != 0 else poly_tex([1, 1, a * b]), False),
              ("degree", poly_tex([1, a + b, a * b]).replace("x^2", "x^3", 1), False)]
        return g, rw + mu

    def rational_expr(self):
        r = self.r
        a = self.nz(-6, 6)
        b = self.nz(-6, 6)
        while b == a:
            b = self.nz(-6, 6)
        g = f"\\frac{{{lin(a)}}}{{{lin(b)}}}"
        c = self.nz(-5, 5)
        while c in (a, b):
            c = self.nz(-5, 5)
        rw = [("common_factor", f"\\frac{{({lin(a)})({lin(c)})}}{{({lin(b)})({lin(c)})}}", True),
              ("split", f"1 + \\frac{{{a - b}}}{{{lin(b)}}}", True)]
        mu = [("inverted", f"\\frac{{{lin(b)}}}{{{lin(a)}}}", False), ("numerator_sign", f"\\frac{{{lin(-a)}}}{{{lin(b)}}}", False)]
        return g, rw + mu

    def point(self):
        r = self.r
        x, y = r.randint(-9, 9), r.randint(-9, 9)
        while x == y:
            y = r.randint(-9, 9)
        g = f"({x}, {y})"
        rw = [("left_right", f"\\left( {x}, {y} \\right)", True), ("fractions", f"(\\frac{{{2 * x}}}{{2}}, {y})", True),
              ("no_space", f"({x},{y})", True)]
        mu = [("swapped", f"({y}, {x})", False), ("y_off_by_one", f"({x}, {y + 1})", False)]
        if x != 0:
            mu.append(("x_sign_flip", f"({-x}, {y})", False))
        return g, rw + mu

    def triple(self):
        r = self.r
        v = r.sample(range(-9, 10), 3)
        g = "(" + ", ".join(map(str, v)) + ")"
        rw = [("left_right", "\\left(" + ", ".join(map(str, v)) + "\\right)", True)]
        mu = [("swapped_last", f"({v[0]}, {v[2]}, {v[1]})", False), ("missing", f"({v[0]}, {v[1]})", False)]
        return g, rw + mu

    def set_(self):
        r = self.r
        k = r.randint(2, 4)
        v = sorted(r.sample(range(-12, 13), k))
        g = "\\{" + ", ".join(map(str, v)) + "\\}"
        p = v[:]
        while p == v:
            r.shuffle(p)
        rw = [("permuted", "\\{" + ", ".join(map(str, p)) + "\\}", True),
              ("left_right", "\\left\\{" + ",".join(map(str, v)) + "\\right\\}", True)]
        drop = v[:-1]
        out = [x for x in range(-12, 13) if x not in v]
        changed = v[:-1] + [r.choice(out)]
        mu = [("dropped", "\\{" + ", ".join(map(str, drop)) + "\\}", False), ("changed", "\\{" + ", ".join(map(str, changed)) + "\\}", False)]
        return g, rw + mu

    def roots(self):
        r = self.r
        a, b = r.sample(range(-9, 10), 2)
        g = f"{a}, {b}"
        rw = [("swapped", f"{b}, {a}", True), ("assignments", f"x = {a}, x = {b}", True)]
        mu = [("signs", f"{-a}, {-b}" if (a, b) != (-b, -a) and (a, b) != (-a, -b) and (-a != b) else f"{a + 1}, {b}", False),
              ("one_only", f"{a}", False)]
        mu = [m for m in mu if set(map(str, (m[1].split(", ")))) != {str(a), str(b)}]
        return g, rw + mu

    def interval(self):
        r = self.r
        a = r.randint(-10, 5)
        b = a + r.randint(1, 10)
        lo, hi = r.choice(["[", "("]), r.choice(["]", ")"])
        g = f"{lo}{a}, {b}{hi}"
        lo_op = "\\le" if lo == "[" else "<"
        hi_op = "\\le" if hi == "]" else "<"
        rw = [("inequality", f"{a} {lo_op} x {hi_op} {b}", True), ("left_right", f"\\left{lo} {a}, {b} \\right{hi}", True)]
        flo = "(" if lo == "[" else "["
        fhi = ")" if hi == "]" else "]"
        mu = [("left_end", f"{flo}{a}, {b}{hi}", False), ("right_end", f"{lo}{a}, {b}{fhi}", False),
              ("shifted", f"{lo}{a}, {b + 1}{hi}", False)]
        return g, rw + mu

    def ray(self):
        r = self.r
        a = r.randint(-10, 10)
        closed = r.random() < 0.5
        ge, le = "\\ge", "\\le"
        if r.random() < 0.5:
            lo = "[" if closed else "("
            g = f"{lo}{a}, \\infty)"
            rw = [("inequality", f"x {ge if closed else '>'} {a}", True)]
            mu = [("strictness", f"x {'>' if closed else ge} {a}", False), ("direction", f"x {le if closed else '<'} {a}", False),
                  ("sign_flip", f"{lo}{-a if a else 1}, \\infty)", False)]
        else:
            hi = "]" if closed else ")"
            g = f"(-\\infty, {a}{hi}"
            rw = [("inequality", f"x {le if closed else '<'} {a}", True)]
            mu = [("strictness", f"x {'<' if closed else le} {a}", False), ("direction", f"x {ge if closed else '>'} {a}", False)]
        return g, rw + mu

    def vector(self):
        r = self.r
        x, y = r.randint(-9, 9), r.randint(-9, 9)
        while x == y:
            y = r.randint(-9, 9)
        g = f"\\begin{{pmatrix}} {x} \\\\ {y} \\end{{pmatrix}}"
        rw = [("bmatrix", f"\\begin{{bmatrix}} {x} \\\\ {y} \\end{{bmatrix}}", True),
              ("halves", f"\\begin{{pmatrix}} \\frac{{{2 * x}}}{{2}} \\\\ {y} \\end{{pmatrix}}", True)]
        mu = [("swapped", f"\\begin{{pmatrix}} {y} \\\\ {x} \\end{{pmatrix}}", False),
              ("off_by_one", f"\\begin{{pmatrix}} {x} \\\\ {y + 1} \\end{{pmatrix}}", False)]
        return g, rw + mu

    def matrix(self):
        r = self.r
        a, b, c, d = (r.randint(-9, 9) for _ in range(4))
        while b == c:
            c = r.randint(-9, 9)
        m = lambda a, b, c, d, env="pmatrix": f"\\begin{{{env}}} {a} & {b} \\\\ {c} & {d} \\end{{{env}}}"
        g = m(a, b, c, d)
        rw = [("bmatrix", m(a, b, c, d, "bmatrix"), True), ("spacing", g.replace(" & ", "&"), True)]
        mu = [("transposed", m(a, c, b, d), False), ("off_by_one", m(a, b, c, d + 1), False)]
        return g, rw + mu

    def complex_(self):
        r = self.r
        a, b = self.nz(-9, 9), self.nz(-9, 9)
        bi = ("" if b == 1 else "-" if b == -1 else str(b)) + "i"
        g = f"{a}{'+' if b > 0 else ''}{bi}"
        rw = [("reordered", f"{bi}{'+' if a > 0 else ''}{a}", True)]
        cb = ("" if -b == 1 else "-" if -b == -1 else str(-b)) + "i"
        mu = [("conjugate", f"{a}{'+' if -b > 0 else ''}{cb}", False), ("real_off_by_one", f"{a + 1}{'+' if b > 0 else ''}{bi}", False)]
        return g, rw + mu


FAMILIES = ["integer", "fraction", "surd", "pi_multiple", "logarithm", "percent", "unit", "polynomial", "rational_expr",
            "point", "triple", "set_", "roots", "interval", "ray", "vector", "matrix", "complex_"]


def wrap(r: random.Random, answer: str) -> str:
    x = r.random()
    if x < 0.8:
        return f"So the final answer is $\\boxed{{{answer}}}$."
    if x < 0.9:
        return f"We simplify and get $\\boxed{{{answer}}}$"
    return f"The final answer is ${answer}$."


def generate(seed: int, n: int):
    r = random.Random(seed)
    g = Gen(r)
    seen = set()
    out = []
    i = 0
    while len(out) < n:
        fam = FAMILIES[i % len(FAMILIES)]
        i += 1
        gold, cands = getattr(g, fam)()
        # one rewrite and one mutation per gold, so the set is about half near misses
        for want in (True, False):
            pool = [c for c in cands if c[2] == want and c[1] is not None and c[1] != gold]
            if not pool:
                continue
            kind, pred, eq = r.choice(pool)
            key = (gold, pred)
            if key in seen or (not eq and pred == gold):
                continue
            seen.add(key)
            out.append({"gold": gold, "prediction": wrap(r, pred), "equivalent": eq, "family": fam.rstrip("_"), "kind": kind})
            if len(out) >= n:
                break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--n", type=int, default=2400)
    a = ap.parse_args()
    for p in generate(a.seed, a.n):
        print(json.dumps(p))


if __name__ == "__main__":
    main()
