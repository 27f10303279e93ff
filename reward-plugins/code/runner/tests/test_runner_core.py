"""Native tests of runner_core (the component's logic without the WIT glue)."""

import ast
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import runner_core as core  # noqa: E402

BIG = 1 << 20


def run(program, stdin="", bound=BIG):
    return core.run_script(program, stdin, bound)


# --- run-script ----------------------------------------------------------------------------

def test_stdin_echo():
    o = run("import sys\nsys.stdout.write(sys.stdin.read())", "a b\nc\n")
    assert (o.kind, o.text, o.stdout) == ("ok", None, "a b\nc\n")


def test_input_loop_until_eof():
    prog = "n = int(input())\nfor _ in range(n):\n    a, b = map(int, input().split())\n    print(a + b)\n"
    o = run(prog, "3\n1 2\n3 4\n5 6\n")
    assert o.kind == "ok" and o.stdout == "3\n7\n11\n"
    o = run("while True:\n    try:\n        print(input()[::-1])\n    except EOFError:\n        break\n", "ab\ncd")
    assert o.kind == "ok" and o.stdout == "ba\ndc\n"


def test_stdin_readline_iteration_and_buffer():
    o = run("import sys\nfirst = sys.stdin.readline()\nrest = [l.strip() for l in sys.stdin]\nprint(first.strip(), rest)", "x\ny\nz\n")
    assert o.stdout == "x ['y', 'z']\n"
    o = run("import sys\ndata = sys.stdin.buffer.read().split()\nprint(sum(map(int, data)))", "1 2\n3 é\n".replace(" é", ""))
    assert o.stdout == "6\n"
    o = run("import sys\nsys.stdout.buffer.write('é\\n'.encode())\nprint('x')", "")
    assert o.stdout == "é\nx\n"
    o = run("import sys\nprint('a')\nsys.stdout.flush()\nsys.stdout.buffer.write(b'b\\n')\nprint('c')", "")
    assert o.stdout == "a\nb\nc\n"


def test_empty_stdin_eof_error():
    o = run("input()")
    assert o.kind == "runtime-error" and o.text.startswith("EOFError")


def test_output_bound_trips_and_keeps_prefix():
    o = run("for i in range(1000):\n    print(i)\n", bound=10)
    assert o.kind == "output-limit" and o.text is None
    assert o.stdout == "0\n1\n2\n3\n4\n"[:10]
    # exactly the bound is fine
    o = run("print('x' * 9)", bound=10)
    assert o.kind == "ok" and o.stdout == "x" * 9 + "\n"
    # buffered output past the bound trips at the final flush
    o = run("print('x' * 20)", bound=10)
    assert (o.kind, o.stdout) == ("output-limit", "x" * 10)
    # an endless printer is stopped (the exception is a BaseException: `except Exception` misses it)
    o = run("while True:\n    try:\n        print('y' * 100)\n    except Exception:\n        pass\n", bound=1000)
    assert o.kind == "output-limit" and o.stdout == (("y" * 100 + "\n") * 10)[:1000]


def test_output_bound_does_not_split_a_character():
    o = run("print('é' * 10)", bound=5)
    assert o.kind == "output-limit" and o.stdout == "éé"


def test_output_bound_caught_and_printing_on_is_still_output_limit():
    prog = "for i in range(100):\n    try:\n        print('line', i)\n    except BaseException:\n        pass\nprint('done')\n"
    o = run(prog, bound=20)
    assert o.kind == "output-limit" and len(o.stdout.encode()) <= 20 and o.stdout.startswith("line 0\nline 1\n")
    o = run("try:\n    print('x' * 100)\nexcept:\n    pass\nraise SystemExit(0)", bound=10)
    assert o.kind == "output-limit"


def test_replacing_stdout_neither_hides_nor_forges():
    prog = "import sys, io\nprint('real')\nsys.stdout = io.StringIO()\nprint('hidden')\n"
    o = run(prog)
    assert o.kind == "ok" and o.stdout == "real\n"
    # a buffered wrapper over our writer is flushed at the end, as at interpreter exit
    prog = "import sys, io\nout = io.TextIOWrapper(sys.stdout.buffer)\nsys.stdout = out\nprint('via wrapper')\n"
    o = run(prog)
    assert o.stdout == "via wrapper\n"
    # output through a replacement stays bounded
    o = run("import sys, io\nsys.stdout = io.TextIOWrapper(sys.stdout.buffer)\nprint('y' * 50)\n", bound=10)
    assert o.kind == "output-limit" and len(o.stdout) <= 10


def test_system_exit():
    assert run("import sys\nprint(1)\nsys.exit(0)\nprint(2)").kind == "ok"
    assert run("raise SystemExit").kind == "ok"
    o = run("import sys\nsys.exit(3)")
    assert (o.kind, o.text) == ("runtime-error", "SystemExit: 3")


def test_syntax_error_text_with_line():
    o = run("x = 1\ny = 2\nz = (\n")
    assert o.kind == "compile-error" and "(line 3)" in o.text and o.text.startswith("SyntaxError: ")
    o = run("if True:\nprint(1)\n")
    assert o.kind == "compile-error" and o.text.startswith("IndentationError: ") and o.text.endswith("(line 2)")


def test_runtime_errors():
    o = run("print('before')\n1 / 0\n")
    assert (o.kind, o.text, o.stdout) == ("runtime-error", "ZeroDivisionError: division by zero", "before\n")
    o = run("def f(n):\n    return f(n + 1)\nf(0)\n")
    assert o.kind == "runtime-error" and o.text.startswith("RecursionError: maximum recursion depth exceeded")
    o = run("class Bad(Exception):\n    pass\nraise Bad('x')\n")
    assert o.text == "Bad: x"
    o = run("raise ValueError('v' * 5000)")
    assert o.kind == "runtime-error" and len(o.text.encode()) <= core.TEXT_BOUND
    o = run("raise MemoryError")
    assert (o.kind, o.text) == ("out-of-memory", "MemoryError")
    o = run("raise ValueError('\\ud800')")
    o.text.encode("utf-8")  # valid Unicode for the WIT string


def test_main_block_runs_in_script_not_in_load():
    prog = "def f():\n    return 1\nif __name__ == '__main__':\n    print('main')\n"
    assert run(prog).stdout == "main\n"
    o = core.load(prog, BIG)
    assert (o.kind, o.stdout) == ("ok", "")


def test_stdlib_imports_and_classes():
    prog = (
        "from collections import Counter, deque\nimport heapq, bisect, math\nfrom dataclasses import dataclass\n"
        "from typing import NamedTuple\n@dataclass\nclass P:\n    x: int\nclass Q(NamedTuple):\n    a: int\n"
        "print(Counter('aab')['a'], P(2).x, Q(3).a, math.gcd(4, 6))\n"
    )
    o = run(prog)
    assert (o.kind, o.stdout) == ("ok", "2 2 3 2\n")


# --- load / call ---------------------------------------------------------------------------

def test_call_json_and_python():
    prog = "def pair(a, b):\n    return (a, b)\ndef s(xs):\n    return set(xs)\ndef e():\n    return frozenset()\n"
    assert core.load(prog, BIG).kind == "ok"
    o = core.call("pair", "[1, [2, 3]]", "json")
    assert (o.kind, o.value) == ("ok", "[1, [2, 3]]")
    o = core.call("pair", "[1, (2, 3)]", "python")
    assert (o.kind, o.value) == ("ok", "(1, (2, 3))")
    o = core.call("s", "[[1, 2]]", "json")
    assert o.kind == "runtime-error" and o.text == "TypeError: the return value (set) has no JSON form" and o.value is None
    o = core.call("s", "[[1, 2, 2]]", "python")
    assert o.kind == "ok" and ast.literal_eval(o.value) == {1, 2}
    assert core.call("e", "[]", "python").value == "set()"
    assert core.call("s", "[[]]", "python").value == "set()"
    o = core.call("missing", "[]", "json")
    assert (o.kind, o.text) == ("runtime-error", "NameError: name 'missing' is not defined")


def test_call_finds_a_method_of_class_solution():
    core.load("class Solution:\n    def add(self, a, b):\n        return a + b\n", BIG)
    o = core.call("add", "[1, 2]", "json")
    assert (o.kind, o.value) == ("ok", "3")
    assert core.call("sub", "[1, 2]", "json").text == "NameError: name 'sub' is not defined"


def test_call_errors_and_output():
    prog = "class Foo:\n    pass\ndef foo():\n    return Foo()\ndef loud(n):\n    print('x' * n)\n    return n\ndef boom():\n    return 1 / 0\n"
    core.load(prog, 10)
    o = core.call("foo", "[]", "python")
    assert (o.kind, o.text) == ("runtime-error", "TypeError: the return value (Foo) is not a plain value")
    assert core.call("boom", "[]", "json").text == "ZeroDivisionError: division by zero"
    o = core.call("loud", "[3]", "json")
    assert (o.kind, o.stdout, o.value) == ("ok", "xxx\n", "3")
    o = core.call("loud", "[2]", "json")
    assert (o.kind, o.stdout, o.value) == ("ok", "xx\n", "2")  # this call's output only
    o = core.call("loud", "[20]", "json")
    assert o.kind == "output-limit" and o.stdout == "xxx"  # the bound is the instance's: 10 bytes in all, 7 used
    assert core.call("boom", "[]", "json").kind == "output-limit"


def test_load_output_is_not_repeated_by_calls():
    core.load("print('loading')\ndef f():\n    print('in f')\n    return None\n", BIG)
    o = core.call("f", "[]", "json")
    assert (o.kind, o.stdout, o.value) == ("ok", "in f\n", "null")


def test_call_value_bound():
    core.load("def big():\n    return 'a' * 100\n", 50)
    assert core.call("big", "[]", "json").kind == "output-limit"


def test_plain_repr_round_trips():
    import collections
    values = [
        None, True, 3, -2.5, float("inf"), 1 + 2j, "s'\"\n\ud800", b"\x00b", (1,), (), [1, (2, 3)],
        {"a": [1], (1, 2): {3}}, {1, 2}, frozenset({3}), collections.Counter("aab"), collections.OrderedDict(a=1),
    ]
    for v in values:
        text = core.plain_repr(v)
        back = ast.literal_eval(text)
        want = set(v) if isinstance(v, frozenset) else v
        assert back == want, (v, text)
    for bad in [float("nan"), object(), {frozenset({1})}, {frozenset(): 1}]:
        try:
            core.plain_repr(bad)
        except core.NotPlain:
            pass
        else:
            raise AssertionError(bad)
    cyc = []
    cyc.append(cyc)
    try:
        core.plain_repr(cyc)
    except core.NotPlain:
        pass


# --- check ---------------------------------------------------------------------------------

def _candidate(program):
    """A candidate_call over a native load of `program` (the host does this across instances)."""
    def call(name, args):
        core.load(program, BIG)
        o = core.call(name, args, "python")
        if o.kind == "ok":
            return ("ok", o.value)
        return ("err", o.text or o.kind)
    return call


ADD = "def add(a, b):\n    return a + b\ndef boom(x):\n    return 1 / 0\n"


def test_check_passes_and_fails_with_the_assert_line():
    test = "assert add(1, 2) == 3\nassert add((1,), (2,)) == (1, 2)\n"
    o = core.check("", test, ["add"], BIG, _candidate(ADD))
    assert (o.kind, o.text) == ("ok", None)
    test = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 5\ncheck(add)\n"
    o = core.check("", test, ["add"], BIG, _candidate(ADD))
    assert (o.kind, o.text) == ("failed", "assert candidate(2, 2) == 5")
    o = core.check("", "assert add(1, 1) == 3, 'one plus one'\n", ["add"], BIG, _candidate(ADD))
    assert (o.kind, o.text) == ("failed", "assert add(1, 1) == 3, 'one plus one': one plus one")


def test_check_other_exceptions_and_compile_errors():
    o = core.check("", "assert add(1) == 1\n", ["add"], BIG, _candidate(ADD))
    assert o.kind == "runtime-error" and o.text.startswith("TypeError")  # the candidate's TypeError
    o = core.check("", "x = undefined_name\n", ["add"], BIG, _candidate(ADD))
    assert o.kind == "failed" and o.text.startswith("NameError")
    o = core.check("import math\n", "assert math.isclose(add(0.1, 0.2), 0.3)\n", ["add"], BIG, _candidate(ADD))
    assert o.kind == "ok"
    o = core.check("", "assert (\n", ["add"], BIG, _candidate(ADD))
    assert o.kind == "compile-error" and o.text.startswith("test code: SyntaxError")
    o = core.check("def (:\n", "pass\n", ["add"], BIG, _candidate(ADD))
    assert o.kind == "compile-error" and o.text.startswith("test code: ")


def test_candidate_error_not_swallowed():
    test = "try:\n    boom(1)\nexcept Exception:\n    pass\nassert True\n"
    o = core.check("", test, ["boom"], BIG, _candidate(ADD))
    assert (o.kind, o.text) == ("runtime-error", "ZeroDivisionError: division by zero")
    test = "try:\n    boom(1)\nexcept:\n    pass\n"
    o = core.check("", test, ["boom"], BIG, _candidate(ADD))
    assert (o.kind, o.text) == ("runtime-error", "ZeroDivisionError: division by zero")


def test_stand_in_refuses_kwargs():
    o = core.check("", "add(a=1, b=2)\n", ["add"], BIG, _candidate(ADD))
    assert o.kind == "failed" and o.text.startswith("TypeError: add() takes positional arguments only")


def test_check_output_bound():
    o = core.check("", "for i in range(100):\n    print(i)\n", [], 10, _candidate(ADD))
    assert o.kind == "output-limit"


def test_sandbox_refuses_files_and_serves_fd_idioms():
    core.enter_sandbox()
    try:
        o = run("open('/etc/passwd').read()")
        assert o.kind == "runtime-error" and o.text.startswith("PermissionError: there is no file system here")
        o = run("print(open(0).read().split())", "1 2\n")
        assert o.stdout == "['1', '2']\n"
        o = run("import os\nprint(os.read(0, os.fstat(0).st_size).split())\nos.write(1, b'raw\\n')", "3 4\n")
        assert o.stdout == "[b'3', b'4']\nraw\n"
        o = run("import sys\nopen(1, 'w').write('w\\n')\nopen(1, 'wb').write(b'b\\n')\n")
        assert o.stdout == "w\nb\n"
        o = run("x = (\n")
        assert o.kind == "compile-error" and o.text.endswith("(line 1)")
    finally:
        core._SANDBOX = False
