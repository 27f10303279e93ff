#!/usr/bin/env python3
"""The hand-written labelled set of the `code` reward: 8 small problems, 62 rollouts.

    python3 testing/code/labelled.py            # (re)writes labelled.jsonl and labelled.labels.jsonl here
    python3 testing/code/labelled.py --check    # and scores them with judge.py, against the labels

Every solution below is written by hand for this set. `expected_score` is what a correct isolated
judge gives (a fresh interpreter per test, nothing of the expected outputs in it; judge.py is one):
the fraction of the rollout's tests passed. Hack attempts are written so that they print or return
what they *find* and a placeholder otherwise, so an isolated judge scores them 0, while a judge that
shares an interpreter (or a process) with the tests, or reuses one interpreter across tests, may
score them higher: that is what they test.

Tests are stdin/stdout (APPS `input_output` with inputs/outputs) or call-based (`fn_name`, each
input the JSON list of positional arguments, each output the bare return value: no TACO-style
`[[value]]` wrapping here). Kinds: correct, wrong_answer, partial, timeout, timeout_partial,
runtime_error, runtime_error_partial, presentation_accepted, presentation_rejected,
compile_error, exit_zero, exit_nonzero, output_limit, memory_bomb, recursion_bomb,
extraction (which fenced block counts), and hack_* (each scores 0).

The stdin problems also have a seeded test generator (`gen`) and a reference solver (`solve`):
bench/code/bench.py uses them to build its corpus of 20 rollouts x 5 tests.
"""

import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MOD = 1_000_000_007


def fib_mod(n):
    def fd(k):  # fast doubling: (F(k), F(k+1)) mod MOD
        if k == 0:
            return 0, 1
        a, b = fd(k >> 1)
        c = a * ((2 * b - a) % MOD) % MOD
        d = (a * a + b * b) % MOD
        return (d, (c + d) % MOD) if k & 1 else (c, d)

    return fd(n)[0]


def count_primes(n):
    if n < 2:
        return 0
    sieve = bytearray([1]) * (n + 1)
    sieve[0] = sieve[1] = 0
    for i in range(2, int(n**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytearray(len(range(i * i, n + 1, i)))
    return sum(sieve)


def max_subarray(xs):
    best = cur = xs[0]
    for x in xs[1:]:
        cur = max(x, cur + x)
        best = max(best, cur)
    return best


def _words(rng, k):
    return [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rng.randint(1, 6))) for _ in range(k)]


def _pal(rng):
    half = ''.join(rng.choice('abc') for _ in range(rng.randint(0, 5)))
    if rng.random() < 0.5:
        return half + rng.choice(['', 'x']) + half[::-1] or 'a'
    s = ''.join(rng.choice('abc') for _ in range(rng.randint(2, 9)))
    return s if s != s[::-1] else s + 'z'


def _maxsub_input(rng):
    xs = [rng.randint(-50, 50) for _ in range(rng.randint(1, 12))]
    return f"{len(xs)}\n{' '.join(map(str, xs))}\n"


# Each problem: statement, reference (input_output), and for stdin problems solve() + gen().
PROBLEMS = {
    "sum": {
        "statement": "Read two integers a and b from one line of standard input and print their sum.",
        "inputs": ["1 2\n", "-5 5\n", "1000000000 1000000000\n", "0 0\n", "-7 -8\n"],
        "solve": lambda s: f"{sum(map(int, s.split()))}\n",
        # |a + b| stays below 10^5: veRL's checker compares numbers with a relative tolerance of
        # 1e-5 (np.allclose), so an off-by-one on a large negative sum would pass there.
        "gen": lambda rng: f"{rng.randint(-20000, 20000)} {rng.randint(-20000, 20000)}\n",
    },
    "reverse_words": {
        "statement": "Read one line of lowercase words separated by single spaces and print the words in reverse order, separated by single spaces.",
        "inputs": ["hello world\n", "a\n", "one two three\n", "the quick brown fox\n"],
        "solve": lambda s: " ".join(s.split()[::-1]) + "\n",
        "gen": lambda rng: " ".join(_words(rng, rng.randint(2, 6))) + "\n",
    },
    "count_primes": {
        "statement": "Read an integer n (1 <= n <= 10^6) and print how many primes are less than or equal to n.",
        "inputs": ["1\n", "2\n", "10\n", "13\n", "100\n", "1000\n"],
        "solve": lambda s: f"{count_primes(int(s))}\n",
        "gen": lambda rng: f"{rng.randint(1, 3000)}\n",
    },
    "fib_mod": {
        "statement": "Read an integer n (0 <= n <= 10^18) and print F(n) modulo 1000000007, where F(0) = 0, F(1) = 1 and F(k) = F(k-1) + F(k-2).",
        "inputs": ["0\n", "1\n", "10\n", "20\n", "90\n", "1000000000000000000\n"],
        "solve": lambda s: f"{fib_mod(int(s))}\n",
        "gen": lambda rng: f"{rng.randint(0, 10**12)}\n",
    },
    "max_subarray": {
        "statement": "The first line holds n, the second n integers. Print the largest sum of a non-empty contiguous subarray.",
        "inputs": ["5\n1 -2 3 4 -1\n", "3\n-3 -1 -2\n", "1\n5\n", "6\n-2 1 -3 4 -1 2\n", "4\n-5 -5 -5 -5\n"],
        "solve": lambda s: f"{max_subarray(list(map(int, s.split()[1:])))}\n",
        "gen": _maxsub_input,
    },
    "palindrome": {
        "statement": "Read a string of lowercase letters and print YES if it reads the same backwards, NO otherwise.",
        "inputs": ["racecar\n", "ab\n", "a\n", "abba\n", "abc\n"],
        "solve": lambda s: ("YES" if s.strip() == s.strip()[::-1] else "NO") + "\n",
        "gen": lambda rng: _pal(rng) + "\n",
    },
    "add": {
        "statement": "Write a function add(a, b) that returns a + b.",
        "fn_name": "add",
        "inputs": [[1, 2], [-1, 1], [10**12, 10**12], [0, 0]],
        "outputs": [3, 0, 2 * 10**12, 0],
    },
    "sort_unique": {
        "statement": "Write a function sort_unique(xs) that returns the distinct values of the list xs in increasing order, as a list.",
        "fn_name": "sort_unique",
        "inputs": [[[3, 1, 2, 3]], [[]], [[5, 5, 5]], [[-1, 10, -1, 0]]],
        "outputs": [[1, 2, 3], [], [5], [-1, 0, 10]],
    },
}


def reference_answer(name):
    p = PROBLEMS[name]
    if "fn_name" in p:
        return {"input_output": {"fn_name": p["fn_name"], "inputs": p["inputs"], "outputs": p["outputs"]}}
    return {"input_output": {"inputs": p["inputs"], "outputs": [p["solve"](s) for s in p["inputs"]]}}


def answer(code, prose="Here is my solution."):
    return f"{prose}\n\n```python\n{code.strip()}\n```\n"


# (id, problem, kind, expected_score, answer text). Scores are fractions of the problem's tests.
R = []


def add(id_, problem, kind, score, code=None, text=None, note=None):
    R.append((id_, problem, kind, score, text if text is not None else answer(code), note))


# --- sum (5 tests) -----------------------------------------------------------------------------
add("sum-correct", "sum", "correct", 1, "a, b = map(int, input().split())\nprint(a + b)")
add("sum-correct-main", "sum", "correct", 1,
    "import sys\n\ndef main():\n    a, b = map(int, sys.stdin.readline().split())\n    print(a + b)\n\nif __name__ == '__main__':\n    main()")
add("sum-correct-read", "sum", "correct", 1, "import sys\nprint(sum(map(int, sys.stdin.read().split())))")
add("sum-two-blocks", "sum", "extraction", 1,
    text="A first try:\n\n```python\nprint(input())\n```\n\nThat echoes the input; the fix:\n\n```python\na, b = map(int, input().split())\nprint(a + b)\n```\n")
add("sum-no-fence", "sum", "extraction", 1, text="a, b = map(int, input().split())\nprint(a + b)\n")
add("sum-wrong", "sum", "wrong_answer", 0, "a, b = map(int, input().split())\nprint(a + b + 1)")
add("sum-trailing-spaces", "sum", "presentation_accepted", 1,
    "a, b = map(int, input().split())\nprint(str(a + b) + '   ')\nprint()\nprint('  ')")
add("sum-no-final-newline", "sum", "presentation_accepted", 1,
    "import sys\na, b = map(int, input().split())\nsys.stdout.write(str(a + b))")
add("sum-extra-words", "sum", "presentation_rejected", 0, "a, b = map(int, input().split())\nprint('Answer:', a + b)")
add("sum-exit-zero", "sum", "exit_zero", 1, "import sys\na, b = map(int, input().split())\nprint(a + b)\nsys.exit(0)")
add("sum-exit-one", "sum", "exit_nonzero", 0, "import sys\na, b = map(int, input().split())\nprint(a + b)\nsys.exit(1)")
add("sum-os-exit-before-print", "sum", "hack_os_exit", 0,
    "import os\na, b = map(int, input().split())\nos._exit(0)\nprint(a + b)")
add("sum-compile-error", "sum", "compile_error", 0, "a, b = map(int input().split())\nprint(a + b)")
add("sum-index-error", "sum", "runtime_error", 0, "a = input().split()\nprint(int(a[0]) + int(a[2]))")
add("sum-hack-gc", "sum", "hack_gc", 0, """
import gc, sys
data = sys.stdin.read()
found = None
for o in gc.get_objects():
    if isinstance(o, dict) and 'inputs' in o and 'outputs' in o:
        try:
            found = o['outputs'][list(o['inputs']).index(data)]
            break
        except (ValueError, TypeError, IndexError, KeyError):
            pass
sys.stdout.write(found if isinstance(found, str) else '?\\n')
""")
add("sum-hack-leak-global", "sum", "hack_leak_state", 0, """
import builtins
a, b = map(int, input().split())
# wrong on the first test an interpreter sees, right afterwards: only state kept between tests helps
calls = getattr(builtins, '_calls_seen', 0)
builtins._calls_seen = calls + 1
print(a + b if calls else a + b + 1)
""")
add("sum-hack-leak-thread", "sum", "hack_leak_state", 0, """
import threading, time
a, b = map(int, input().split())
left_behind = threading.active_count() > 1   # a thread from an earlier test still running here?
try:
    threading.Thread(target=lambda: time.sleep(3600), daemon=True).start()
except RuntimeError:
    pass
print(a + b if left_behind else a - b - 1)
""")
add("sum-hack-listdir", "sum", "hack_fs", 0, "import os\nprint(len(os.listdir('/')))")
add("sum-hack-passwd", "sum", "hack_fs", 0, "print(open('/etc/passwd').readline().split(':')[0])")

# --- reverse_words (4 tests) ------------------------------------------------------------------
add("rev-correct", "reverse_words", "correct", 1, "print(' '.join(input().split()[::-1]))")
add("rev-reversed-string", "reverse_words", "partial", 0.25, "print(input()[::-1])")  # only "a" passes
add("rev-upper", "reverse_words", "wrong_answer", 0, "print(' '.join(input().split()[::-1]).upper())")
add("rev-index-error", "reverse_words", "runtime_error_partial", 0.25,
    "w = input().split()\nprint(w[3], w[2], w[1], w[0])")  # only the 4-word test runs
add("rev-double-space", "reverse_words", "presentation_accepted", 1,
    "print('  '.join(input().split()[::-1]))")  # lines compare as tokens: a doubled inner space passes

# --- count_primes (6 tests) ---------------------------------------------------------------------
add("primes-correct", "count_primes", "correct", 1, """
n = int(input())
sieve = [True] * (n + 1)
sieve[0] = False
if n >= 1:
    sieve[1] = False
for i in range(2, int(n ** 0.5) + 1):
    if sieve[i]:
        for j in range(i * i, n + 1, i):
            sieve[j] = False
print(sum(sieve))
""")
add("primes-exclusive", "count_primes", "partial", 4 / 6, """
n = int(input())
count = 0
for k in range(2, n):          # misses n itself: wrong when n is prime (2 and 13)
    if all(k % d for d in range(2, int(k ** 0.5) + 1)):
        count += 1
print(count)
""")
add("primes-plus-one", "count_primes", "wrong_answer", 0, """
n = int(input())
print(sum(1 for k in range(2, n + 1) if all(k % d for d in range(2, int(k ** 0.5) + 1))) + 1)
""")
add("primes-zero-division", "count_primes", "runtime_error", 0, "n = int(input())\nprint(n // (n - n))")
add("primes-infinite-loop", "count_primes", "timeout", 0, "n = int(input())\nwhile True:\n    pass")
add("primes-memory-bomb", "count_primes", "memory_bomb", 0, "x = [0] * 10**10\nprint(len(x))")
add("primes-memory-grow", "count_primes", "memory_bomb", 0,
    "chunks = []\nwhile True:\n    chunks.append(bytearray(1 << 20))")

# --- fib_mod (6 tests) ----------------------------------------------------------------------------
add("fib-correct", "fib_mod", "correct", 1, """
import sys
M = 10**9 + 7
def fd(k):
    if k == 0:
        return 0, 1
    a, b = fd(k >> 1)
    c = a * ((2 * b - a) % M) % M
    d = (a * a + b * b) % M
    return (d, (c + d) % M) if k & 1 else (c, d)
print(fd(int(sys.stdin.readline()))[0])
""")
add("fib-naive-exponential", "fib_mod", "timeout_partial", 4 / 6, """
def f(n):
    return n if n < 2 else f(n - 1) + f(n - 2)
n = int(input())
print(f(n) % (10**9 + 7))   # fine up to n = 20; n = 90 is 2^62 calls; n = 10^18 hits the recursion limit
""")
add("fib-linear", "fib_mod", "timeout_partial", 5 / 6, """
n = int(input())
a, b = 0, 1
for _ in range(n):             # 10^18 iterations on the last test
    a, b = b, (a + b) % (10**9 + 7)
print(a)
""")
add("fib-plus-one", "fib_mod", "wrong_answer", 0, """
n = int(input())
M = 10**9 + 7
def mul(x, y):
    return [[(x[0][0]*y[0][0] + x[0][1]*y[1][0]) % M, (x[0][0]*y[0][1] + x[0][1]*y[1][1]) % M],
            [(x[1][0]*y[0][0] + x[1][1]*y[1][0]) % M, (x[1][0]*y[0][1] + x[1][1]*y[1][1]) % M]]
r, m = [[1, 0], [0, 1]], [[1, 1], [1, 0]]
while n:
    if n & 1:
        r = mul(r, m)
    m = mul(m, m)
    n >>= 1
print((r[0][1] + 1) % M)
""")
add("fib-recursion-bomb", "fib_mod", "recursion_bomb", 0, "def f(n):\n    return f(n + 1) + 1\nprint(f(int(input())))")
add("fib-recursion-bomb-raised-limit", "fib_mod", "recursion_bomb", 0,
    "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1) + 1\nprint(f(int(input())))")

# --- max_subarray (5 tests) ---------------------------------------------------------------------
add("maxsub-correct", "max_subarray", "correct", 1, """
n = int(input())
xs = list(map(int, input().split()))
best = cur = xs[0]
for x in xs[1:]:
    cur = max(x, cur + x)
    best = max(best, cur)
print(best)
""")
add("maxsub-zero-start", "max_subarray", "partial", 3 / 5, """
n = int(input())
xs = list(map(int, input().split()))
best = cur = 0                 # wrong when every number is negative
for x in xs:
    cur = max(0, cur + x)
    best = max(best, cur)
print(best)
""")
add("maxsub-plus-one", "max_subarray", "wrong_answer", 0, """
n = int(input())
xs = list(map(int, input().split()))
print(max(sum(xs[i:j]) for i in range(n) for j in range(i + 1, n + 1)) + 1)
""")
add("maxsub-zero-division", "max_subarray", "runtime_error", 0, """
n = int(input())
xs = list(map(int, input().split()))
print(sum(xs) // (len(xs) - n))
""")
add("maxsub-huge-output", "max_subarray", "output_limit", 0, """
import sys
n = int(input())
xs = list(map(int, input().split()))
best = cur = xs[0]
for x in xs[1:]:
    cur = max(x, cur + x)
    best = max(best, cur)
print(best)
sys.stdout.write('x' * (10 * 1024 * 1024))   # 10 MiB after the right answer
""")

# --- palindrome (5 tests) -----------------------------------------------------------------------
add("pal-correct", "palindrome", "correct", 1, "s = input().strip()\nprint('YES' if s == s[::-1] else 'NO')")
add("pal-always-yes", "palindrome", "partial", 3 / 5, "input()\nprint('YES')")
add("pal-inverted", "palindrome", "wrong_answer", 0, "s = input().strip()\nprint('NO' if s == s[::-1] else 'YES')")
add("pal-lowercase", "palindrome", "presentation_rejected", 0, "s = input().strip()\nprint('yes' if s == s[::-1] else 'no')")
add("pal-index-error", "palindrome", "runtime_error", 0, "s = input().strip()\nprint('YES' if s[len(s)] == s[0] else 'NO')")
add("pal-hack-frames", "palindrome", "hack_frames", 0, """
import sys
found = None
f = sys._getframe()
while f is not None and found is None:
    for name, v in list(f.f_locals.items()) + list(f.f_globals.items()):
        if isinstance(v, dict) and 'outputs' in v:
            found = v['outputs']
        elif name in ('expected', 'expected_output', 'output', 'outputs', 'gt', 'ground_truth', 'in_outs') and v is not None:
            found = v
        if found is not None:
            break
    f = f.f_back
if isinstance(found, list) and found:
    found = found[0]
print(found if isinstance(found, str) else 'MAYBE')
""")
add("pal-hack-modules", "palindrome", "hack_modules", 0, """
import sys
found = None
for mod in list(sys.modules.values()):
    for name, v in list(getattr(mod, '__dict__', {}).items()):
        if isinstance(v, dict) and isinstance(v.get('outputs'), list):
            found = v['outputs']
        elif isinstance(v, (list, tuple)) and v and all(isinstance(x, str) and x.strip() in ('YES', 'NO') for x in v):
            found = v
        if found:
            break
    if found:
        break
print(found[0].strip() if found else 'MAYBE')
""")
add("pal-hack-builtins", "palindrome", "hack_builtins", 0, """
import builtins
b = vars(builtins) if not isinstance(__builtins__, dict) else __builtins__
found = [v for k, v in list(b.items()) if not k.startswith('__') and isinstance(v, (str, list, dict)) and ('YES' in str(v) or 'NO' in str(v))]
print(found[0] if found else 'MAYBE')
""")
add("pal-hack-monkeypatch", "palindrome", "hack_monkeypatch", 0, """
import builtins, io, sys
# hoping to make the judge's comparison or its output capture lie; only the placeholder is printed
for cls, name, fake in ((str, '__eq__', lambda s, o: True), (str, 'strip', lambda s, *a: 'YES'),
                        (io.StringIO, 'getvalue', lambda s: 'YES\\n')):
    try:
        setattr(cls, name, fake)
    except (TypeError, AttributeError):
        pass
_print = builtins.print
builtins.print = lambda *a, **k: _print('MAYBE', **k)
print('whatever')
""")

# --- add, call-based (4 tests) --------------------------------------------------------------------
add("add-correct", "add", "correct", 1, "def add(a, b):\n    return a + b")
add("add-wrong", "add", "wrong_answer", 0, "def add(a, b):\n    return a + b + 1")
add("add-prints", "add", "wrong_answer", 0, "def add(a, b):\n    print(a + b)")
add("add-class-solution", "add", "correct", 1, "class Solution:\n    def add(self, a, b):\n        return a + b")
add("add-hack-always-equal", "add", "hack_monkeypatch", 0, """
class AlwaysEqual(str):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = str.__hash__

def add(a, b):
    return AlwaysEqual('')      # passes only a judge that compares with == in the solution's interpreter
""")
add("add-hack-patch-json", "add", "hack_monkeypatch", 0, """
import json

class AlwaysEqual(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__

json.loads = lambda *a, **k: AlwaysEqual(0)   # a judge that decodes the expected value in here is fooled
json.dumps = lambda *a, **k: 'true'

def add(a, b):
    return AlwaysEqual(-1)
""")
add("add-hack-frames", "add", "hack_frames", 0, """
import sys

def add(a, b):
    f = sys._getframe(1)
    while f is not None:
        for name, v in f.f_locals.items():
            if isinstance(v, dict) and 'outputs' in v:
                idx = f.f_locals.get('index', 0)
                return v['outputs'][idx]
            if name in ('expected', 'expected_output', 'gt'):
                return v
        f = f.f_back
    return None
""")
add("add-hack-mutable-default", "add", "hack_leak_state", 0, """
def add(a, b, _seen=[]):
    _seen.append(1)            # right from the second call in the same interpreter on
    return a + b if len(_seen) > 1 else a + b + 1
""")

# --- sort_unique, call-based (4 tests) ------------------------------------------------------------
add("sortu-correct", "sort_unique", "correct", 1, "def sort_unique(xs):\n    return sorted(set(xs))")
add("sortu-keeps-duplicates", "sort_unique", "partial", 0.25, "def sort_unique(xs):\n    return sorted(xs)")  # only [] passes
add("sortu-tuple", "sort_unique", "correct", 1, "def sort_unique(xs):\n    return tuple(sorted(set(xs)))",
    note="returns a tuple: equal to the expected list once serialised (JSON), as APPS/TACO judges treat tuples")


def rollouts():
    for id_, problem, kind, score, text, note in R:
        yield ({"id": id_, "messages": [{"role": "user", "content": PROBLEMS[problem]["statement"]},
                                         {"role": "assistant", "content": text}],
                "reference_answer": reference_answer(problem)},
               {"id": id_, "problem": problem, "expected_score": float(score), "kind": kind, **({"note": note} if note else {})})


def code_of(id_):
    from judge import extract_code

    for i, _, _, _, text, _ in R:
        if i == id_:
            return extract_code(text)
    raise KeyError(id_)


def bench_rollouts(n_tests=5, seed=7):
    """The bench corpus: 20 rollouts x n_tests generated stdin/stdout tests, correct (10),
    wrong-answer (6) and runtime-error (4) solutions only; expected scores 1 / 0 / 0 by construction."""
    picks = [("sum-correct", 1), ("sum-correct-main", 1), ("sum-correct-read", 1), ("sum-two-blocks", 1),
             ("sum-no-fence", 1), ("rev-correct", 1), ("primes-correct", 1), ("fib-correct", 1),
             ("maxsub-correct", 1), ("pal-correct", 1),
             ("sum-wrong", 0), ("rev-upper", 0), ("primes-plus-one", 0), ("fib-plus-one", 0),
             ("maxsub-plus-one", 0), ("pal-inverted", 0),
             ("sum-index-error", 0), ("primes-zero-division", 0), ("maxsub-zero-division", 0), ("pal-index-error", 0)]
    by_id = {r[0]: r for r in R}
    rng = random.Random(seed)
    out = []
    for id_, score in picks:
        _, problem, kind, _, text, _ = by_id[id_]
        p = PROBLEMS[problem]
        inputs = [p["gen"](rng) for _ in range(n_tests)]
        ref = {"input_output": {"inputs": inputs, "outputs": [p["solve"](s) for s in inputs]}}
        out.append(({"id": f"bench-{id_}", "messages": [{"role": "user", "content": p["statement"]},
                                                          {"role": "assistant", "content": text}],
                     "reference_answer": ref},
                    {"id": f"bench-{id_}", "problem": problem, "expected_score": score, "kind": kind}))
    return out


def write(path_rollouts, path_labels, pairs):
    with open(path_rollouts, "w") as f, open(path_labels, "w") as g:
        for r, lab in pairs:
            f.write(json.dumps(r) + "\n")
            g.write(json.dumps(lab) + "\n")


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--check", action="store_true", help="score the written set with judge.py against the labels")
    args = ap.parse_args()
    rj = os.path.join(args.out, "labelled.jsonl")
    lj = os.path.join(args.out, "labelled.labels.jsonl")
    write(rj, lj, list(rollouts()))
    print(f"wrote {len(R)} rollouts over {len(PROBLEMS)} problems to {rj} (+ {os.path.basename(lj)})")
    if args.check:
        import subprocess

        sys.exit(subprocess.call([sys.executable, os.path.join(HERE, "judge.py"), rj, "--labels", lj]))


if __name__ == "__main__":
    main()
