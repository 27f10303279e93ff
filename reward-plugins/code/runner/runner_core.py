"""The Python interpreter component's logic, without the WIT glue (app.py converts): runs a
program as a script, loads it as a module and calls its functions, and runs assert-style test
code against a program that lives in another instance. Stdlib only, importable natively for
the tests in tests/.

Every run reads its standard output from the `_Writer` it made, never from `sys.stdout` (the
program may replace that). Output past the bound keeps what came before it and ends the run
with `output-limit`, whatever else happened.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import os
import sys
import types
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

# Endings, as in the WIT `ending` variant of the `interpreter` interface.
OK = "ok"
COMPILE_ERROR = "compile-error"
RUNTIME_ERROR = "runtime-error"
FAILED = "failed"
OUT_OF_MEMORY = "out-of-memory"
OUTPUT_LIMIT = "output-limit"

TEXT_BOUND = 1024  # bytes of an ending's text


@dataclass
class Outcome:
    kind: str
    text: Optional[str]
    stdout: str
    value: Optional[str] = None


class OutputLimitExceeded(BaseException):
    """Raised by a write past the output bound (a BaseException: `except Exception` in the
    program does not see it; a bare `except:` may, but the writer stays tripped)."""


class CandidateError(BaseException):
    """The program's instance answered an error for a stand-in's call (a BaseException, so the
    test's `except Exception:` cannot swallow it; the first one is kept even if a bare `except:`
    does)."""


class NotPlain(Exception):
    pass


# --- the sandbox ---------------------------------------------------------------------------
#
# The component is built with WASI stubbed out: any file-system call traps the instance. An audit
# hook refuses every `open` first, so the program sees an exception instead (and CPython's own
# attempt to read a SyntaxError's line from the file `<solution>` fails quietly, falling back to
# the source text). `open(0)` / `open(1)` answer the run's stdin / stdout; `os.read(0, n)`,
# `os.write(1, b)` and `os.fstat(0)` (the usual fast-IO idioms) are served likewise. Off natively
# until `enter_sandbox()` (app.py calls it at the end of the build-time import).

_SANDBOX = False

FIXED_TIME = 1_700_000_000.0  # what time.time() answers in the sandbox


def enter_sandbox() -> None:
    """Called once, at the end of the build-time import (app.py): from then on `open` is refused,
    `import` finds only the modules already imported (the file-system finder would trap on the
    first missing module: `import numpy` now raises ModuleNotFoundError), and the clocks of
    `time` answer fixed values (WASI's clocks are stubbed: reading one traps; a fixed clock
    keeps runs deterministic, and `time.sleep` returns at once). Not called by the native tests,
    which set `_SANDBOX` only."""
    global _SANDBOX
    _SANDBOX = True
    import importlib.machinery
    import time

    # An exception nobody can raise (in a __del__, a finaliser) is reported on sys.stderr, which
    # outside a run is WASI's, and writing there traps: report nothing, and leave a discarding
    # stderr in place between runs.
    sys.unraisablehook = _unraisable
    sys.stderr = sys.__stderr__ = _text_out(_Discard())
    sys.stdout = sys.__stdout__ = _text_out(_Discard())
    sys.meta_path[:] = [f for f in sys.meta_path if f is not importlib.machinery.PathFinder]
    sys.path_importer_cache.clear()
    fixed_ns = int(FIXED_TIME * 1e9)
    time.time = lambda: FIXED_TIME
    time.time_ns = lambda: fixed_ns
    for name in ("perf_counter", "monotonic", "process_time", "thread_time"):
        setattr(time, name, lambda: 0.0)
        setattr(time, name + "_ns", lambda: 0)
    time.sleep = lambda seconds: None


UNRAISABLE: List[str] = []


def _unraisable(u) -> None:
    if len(UNRAISABLE) < 8:
        try:
            UNRAISABLE.append(f"{u.err_msg}: {u.exc_type.__name__}: {u.exc_value} ({u.object!r})")
        except BaseException:  # noqa: BLE001
            pass


def _audit(event: str, args: tuple) -> None:
    if _SANDBOX and event == "open":
        raise PermissionError(f"there is no file system here: open({args[0]!r})")


sys.addaudithook(_audit)


class _StdinBytes(io.BytesIO):
    def close(self) -> None:
        """Not closed by closing a wrapper (`with open(0) as f:`)."""


# --- writers -------------------------------------------------------------------------------

class _Writer(io.RawIOBase):
    """Counts the bytes written; keeps the first `bound` of them (cut at a UTF-8 character
    boundary), then trips and raises on every further write."""

    def __init__(self, bound: int) -> None:
        super().__init__()
        self._bound = bound
        self._data = bytearray()
        self._tripped = False

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        """Never closed: a dropped TextIOWrapper closes its buffer, and `load`'s writer serves
        the later `call`s."""

    def write(self, b) -> int:
        n = len(b) if isinstance(b, (bytes, bytearray)) else memoryview(b).nbytes
        if self._tripped:
            raise OutputLimitExceeded("output limit")
        room = self._bound - len(self._data)
        if n <= room:
            self._data += b
            return n
        chunk = bytes(b)
        cut = room
        while cut > 0 and (chunk[cut] & 0xC0) == 0x80:  # do not split a character
            cut -= 1
        self._data += chunk[:cut]
        self._tripped = True
        raise OutputLimitExceeded("output limit")

    def mark(self) -> int:
        return len(self._data)

    def text(self, since: int = 0) -> str:
        return bytes(self._data[since : self._bound]).decode("utf-8", "replace")

    @property
    def tripped(self) -> bool:
        return self._tripped or len(self._data) > self._bound


class _Discard(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def write(self, b) -> int:
        return len(b) if isinstance(b, (bytes, bytearray)) else memoryview(b).nbytes


def _text_out(raw: io.RawIOBase) -> io.TextIOWrapper:
    """Layered as CPython's own stdout when it is not a terminal: text over an 8 KiB buffer over
    the raw writer (a write-through wrapper straight over a Python-level writer costs 3x as many
    instructions per `print`). The bound trips when a buffer reaches the writer, at the latest
    at the run's final flush."""
    return io.TextIOWrapper(io.BufferedWriter(raw, 8192), encoding="utf-8", errors="strict", newline="\n")


def _text_in(raw: io.BytesIO) -> io.TextIOWrapper:
    # newline=None: "\r\n" input reads as "\n" (tests written on Windows); .buffer has the bytes.
    return io.TextIOWrapper(raw, encoding="utf-8", newline=None)


_LIVE: List["_Stdio"] = []


class _Stdio:
    """Installs the run's stdin/stdout/stderr (and `sys.__std*__`, `sys.argv`), restores them
    after (the component's instance is discarded anyway; the native tests are not)."""

    _NAMES = ("stdin", "stdout", "stderr", "__stdin__", "__stdout__", "__stderr__", "argv")

    def __init__(self, writer: _Writer, stdin: str = "") -> None:
        self.writer = writer
        self.out = _text_out(writer)
        self.err = _text_out(_Discard())
        self.opened: List[Any] = []
        self.raw_in = _StdinBytes(stdin.encode("utf-8", "surrogatepass"))
        self.inp = _text_in(self.raw_in)

    def __enter__(self) -> "_Stdio":
        self.saved = [getattr(sys, n, None) for n in self._NAMES]
        sys.stdin = sys.__stdin__ = self.inp
        sys.stdout = sys.__stdout__ = self.out
        sys.stderr = sys.__stderr__ = self.err
        sys.argv = ["<solution>"]
        self.saved_fns = None
        if _SANDBOX:
            self.saved_fns = (builtins.open, io.open, os.read, os.write, os.fstat)
            builtins.open = io.open = self._open
            os.read, os.write, os.fstat = self._os_read, self._os_write, self._os_fstat
        return self

    def _open(self, file, mode="r", *args, **kwargs):
        if isinstance(file, int) and not isinstance(file, bool) and 0 <= file <= 2:
            binary = "b" in mode
            if file == 0:
                return self.raw_in if binary else _text_in(self.raw_in)
            raw = self.writer if file == 1 else _Discard()
            f = io.BufferedWriter(raw, 8192) if binary else _text_out(raw)
            self.opened.append(f)
            return f
        return self.saved_fns[0](file, mode, *args, **kwargs)  # refused by the audit hook

    def _os_read(self, fd, n):
        if fd == 0:
            return self.raw_in.read(n)
        raise OSError(9, "Bad file descriptor")

    def _os_write(self, fd, data):
        if fd == 1:
            self.out.flush()
            return self.writer.write(data)
        if fd == 2:
            return len(data)
        raise OSError(9, "Bad file descriptor")

    def _os_fstat(self, fd):
        if fd in (0, 1, 2):
            size = len(self.raw_in.getbuffer()) if fd == 0 else 0
            return os.stat_result((0o100644 if fd == 0 else 0o20620, 0, 0, 1, 0, 0, size, 0, 0, 0))
        raise OSError(9, "Bad file descriptor")

    def flush(self) -> None:
        """As the interpreter does at exit: flush a stdout the program put in place of ours (it
        may buffer over our writer), the files `open(1)` gave, then ours. Errors are ignored,
        output past the bound trips the writer."""
        for f in (sys.stdout, *self.opened, self.out):
            try:
                f.flush()
            except BaseException:
                pass

    def __exit__(self, *exc) -> bool:
        # Kept alive: finalising the wrappers would close (and, on CPython 3.14, re-flush) their
        # buffers, reporting "flush of closed file" as unraisable; `load`'s writer serves the
        # later calls. One instance does a handful of runs, so this holds little.
        _LIVE.append(self)
        for n, v in zip(self._NAMES, self.saved):
            setattr(sys, n, v)
        if self.saved_fns is not None:
            builtins.open, io.open, os.read, os.write, os.fstat = self.saved_fns
        return False


# --- texts ---------------------------------------------------------------------------------

def _clean(s: str) -> str:
    """A WIT string must be valid Unicode: lone surrogates become escapes."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")


def _bound(s: str, limit: int = TEXT_BOUND) -> str:
    s = _clean(s)
    b = s.encode("utf-8")
    if len(b) <= limit:
        return s
    return b[: limit - 3].decode("utf-8", "ignore") + "..."


def _exc_line(e: BaseException) -> str:
    """The last line of a traceback: `TypeName: message`."""
    t = type(e)
    name = t.__qualname__
    mod = getattr(t, "__module__", None)
    if mod not in (None, "builtins", "__main__", "solution", "test"):
        name = f"{mod}.{name}"
    try:
        msg = str(e)
    except BaseException:
        msg = "<exception str() failed>"
    return _bound(f"{name}: {msg}" if msg else name)


def _syntax_line(e: SyntaxError) -> str:
    name = type(e).__name__
    msg = e.msg if e.msg else "invalid syntax"
    return _bound(f"{name}: {msg} (line {e.lineno})" if e.lineno else f"{name}: {msg}")


def _compile(source: str, filename: str):
    """The code object, or the compile-error text."""
    try:
        return compile(source, filename, "exec", dont_inherit=True), None
    except SyntaxError as e:  # IndentationError, TabError
        return None, _syntax_line(e)
    except (ValueError, TypeError) as e:  # source with NUL bytes
        return None, _exc_line(e)
    except MemoryError:
        return None, "MemoryError"
    except RecursionError as e:  # too deeply nested to compile
        return None, _exc_line(e)


def _module(name: str) -> types.ModuleType:
    m = types.ModuleType(name)
    m.__dict__["__builtins__"] = builtins
    return m


def _exit_status(e: SystemExit) -> Optional[str]:
    """None for a successful exit, else the runtime-error text."""
    code = e.code
    if code is None or (isinstance(code, int) and code == 0):
        return None
    return _bound(f"SystemExit: {code}")


def _map_exception(e: BaseException) -> Tuple[str, Optional[str]]:
    if isinstance(e, SystemExit):
        text = _exit_status(e)
        return (OK, None) if text is None else (RUNTIME_ERROR, text)
    if isinstance(e, MemoryError):
        return OUT_OF_MEMORY, "MemoryError"
    return RUNTIME_ERROR, _exc_line(e)


def _exec(code, module: types.ModuleType, io_: _Stdio) -> Tuple[str, Optional[str]]:
    """Runs `code` in `module` as its own `sys.modules` entry; the ending (output-limit is the
    caller's to decide, from the writer)."""
    name = module.__name__
    saved = sys.modules.get(name)
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
        result = (OK, None)
    except BaseException as e:  # noqa: BLE001 - every way a program ends is mapped
        result = _map_exception(e)
    finally:
        io_.flush()
        if name == "__main__" and saved is not None:
            sys.modules[name] = saved
    return result


def _finish(io_: _Stdio, kind: str, text: Optional[str], value: Optional[str] = None, since: int = 0) -> Outcome:
    w = io_.writer
    if w.tripped:
        return Outcome(OUTPUT_LIMIT, None, w.text(since), None)
    return Outcome(kind, text, w.text(since), value)


# --- run-script ----------------------------------------------------------------------------

def run_script(program: str, stdin: str, max_output: int) -> Outcome:
    code, err = _compile(program, "<solution>")
    if code is None:
        return Outcome(COMPILE_ERROR, err, "")
    writer = _Writer(max_output)
    with _Stdio(writer, stdin) as io_:
        kind, text = _exec(code, _module("__main__"), io_)
    return _finish(io_, kind, text)


# --- load / call ---------------------------------------------------------------------------

_LOADED: Optional[types.ModuleType] = None
_LOADED_WRITER: Optional[_Writer] = None
_LOADED_BOUND = 0


def load(program: str, max_output: int) -> Outcome:
    """Loads `program` as module `solution` (its `if __name__ == "__main__":` block does not
    run); `call` then calls its functions."""
    global _LOADED, _LOADED_WRITER, _LOADED_BOUND
    _LOADED, _LOADED_WRITER, _LOADED_BOUND = None, _Writer(max_output), max_output
    code, err = _compile(program, "<solution>")
    if code is None:
        return Outcome(COMPILE_ERROR, err, "")
    module = _module("solution")
    _LOADED = module
    with _Stdio(_LOADED_WRITER) as io_:
        kind, text = _exec(code, module, io_)
    return _finish(io_, kind, text)


def _parse_args(args_text: str, encoding: str) -> list:
    if encoding == "json":
        args = json.loads(args_text)
    elif encoding == "python":
        args = ast.literal_eval(args_text)
    else:
        raise ValueError(f"unknown encoding {encoding!r}")
    if not isinstance(args, list):
        raise TypeError(f"the arguments must be a list, not {type(args).__name__}")
    return args


def _json_value(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        if isinstance(e, ValueError) and "Out of range float" not in str(e) and "Circular" not in str(e):
            raise  # e.g. an int too long to print: as the program itself would see it
        raise NotPlain(f"TypeError: the return value ({_type_name(value)}) has no JSON form") from None


def _type_name(v: Any) -> str:
    return type(v).__qualname__


def plain_repr(value: Any) -> str:
    """`value` as a Python literal `ast.literal_eval` reads back (NotPlain when it has none).
    Subclasses of the plain types write as their base (a namedtuple as a tuple, a Counter as a
    dict, an IntEnum as an int); a frozenset writes as a set; inf as 1e309."""
    out: List[str] = []
    _plain(value, out, False, set(), 0, value)
    return "".join(out)


_MAX_DEPTH = 400


def _plain(v: Any, out: List[str], hashed: bool, active: set, depth: int, top: Any) -> None:
    if v is None or v is True or v is False:
        out.append(repr(v))
        return
    t = type(v)
    if t is int or t is str or t is bytes:
        out.append(repr(v))
        return
    if isinstance(v, bool):
        out.append(repr(bool(v)))
    elif isinstance(v, int):
        out.append(int.__repr__(v))
    elif isinstance(v, float):
        out.append(_float(float(v), top))
    elif isinstance(v, complex):
        c = complex(v)
        if c.real != c.real or c.imag != c.imag or abs(c.real) == float("inf") or abs(c.imag) == float("inf"):
            raise NotPlain(f"TypeError: the return value ({_type_name(top)}) is not a plain value")
        out.append(repr(c))
    elif isinstance(v, str):
        out.append(str.__repr__(v))
    elif isinstance(v, (bytes, bytearray)):
        out.append(repr(bytes(v)))
    elif isinstance(v, (list, tuple, dict, set, frozenset)):
        if depth > _MAX_DEPTH or id(v) in active:
            raise NotPlain(f"TypeError: the return value ({_type_name(top)}) is not a plain value")
        active.add(id(v))
        d = depth + 1
        if isinstance(v, (set, frozenset)):
            if hashed:  # a set inside a set or a dict key does not read back
                raise NotPlain(f"TypeError: the return value ({_type_name(top)}) is not a plain value")
            if not v:
                out.append("set()")
            else:
                out.append("{")
                for i, x in enumerate(v):
                    if i:
                        out.append(", ")
                    _plain(x, out, True, active, d, top)
                out.append("}")
        elif isinstance(v, dict):
            out.append("{")
            for i, (k, x) in enumerate(v.items()):
                if i:
                    out.append(", ")
                _plain(k, out, True, active, d, top)
                out.append(": ")
                _plain(x, out, hashed, active, d, top)
            out.append("}")
        else:
            is_tuple = isinstance(v, tuple)
            out.append("(" if is_tuple else "[")
            for i, x in enumerate(v):
                if i:
                    out.append(", ")
                _plain(x, out, hashed, active, d, top)
            if is_tuple and len(v) == 1:
                out.append(",")
            out.append(")" if is_tuple else "]")
        active.discard(id(v))
    else:
        raise NotPlain(f"TypeError: the return value ({_type_name(top)}) is not a plain value")


def _float(f: float, top: Any) -> str:
    if f != f:
        raise NotPlain(f"TypeError: the return value ({_type_name(top)}) is not a plain value (nan)")
    if f == float("inf"):
        return "1e309"
    if f == float("-inf"):
        return "-1e309"
    return repr(f)


def call(function: str, args_text: str, encoding: str) -> Outcome:
    """Calls top-level `function` of the loaded program with the positional arguments in
    `args_text` (a list in `encoding`: "json" or "python"); the value comes back in it. The
    outcome's stdout is what this call wrote; the output bound (from `load`) is over everything
    the instance wrote, and once passed every later call ends `output-limit` too."""
    writer = _LOADED_WRITER if _LOADED_WRITER is not None else _Writer(0)
    since = writer.mark()  # a call's stdout is what it wrote; the bound is the instance's
    with _Stdio(writer) as io_:
        try:
            args = _parse_args(args_text, encoding)
        except BaseException as e:  # noqa: BLE001
            return _finish(io_, RUNTIME_ERROR, _bound(f"the call's arguments: {_exc_line(e)}"), since=since)
        g = _LOADED.__dict__ if _LOADED is not None else {}
        # LeetCode-style problems (APPS, TACO call-based) define the function as a method of
        # `class Solution`: called on a fresh instance, as their judges do.
        solution_class = g.get("Solution")
        if function not in g and not (isinstance(solution_class, type) and hasattr(solution_class, function)):
            return _finish(io_, RUNTIME_ERROR, _bound(f"NameError: name {function!r} is not defined"), since=since)
        value = None
        try:
            f = g[function] if function in g else getattr(solution_class(), function)
            result = f(*args)
            value = _json_value(result) if encoding == "json" else plain_repr(result)
            kind, text = OK, None
        except NotPlain as e:
            kind, text = RUNTIME_ERROR, _bound(str(e))
        except BaseException as e:  # noqa: BLE001
            kind, text = _map_exception(e)
        finally:
            io_.flush()
    if value is not None and len(value.encode("utf-8", "surrogatepass")) > _LOADED_BOUND:
        return Outcome(OUTPUT_LIMIT, None, writer.text(since), None)
    return _finish(io_, kind, text, _clean(value) if value is not None else None, since=since)


# --- check ---------------------------------------------------------------------------------

CandidateCall = Callable[[str, str], Tuple[str, str]]


def _stand_in(name: str, candidate_call: CandidateCall, errors: list):
    def stand_in(*args, **kwargs):
        if kwargs:
            raise TypeError(f"{name}() takes positional arguments only here (the program runs in another instance)")
        try:
            text = plain_repr(list(args))
        except NotPlain:
            raise TypeError(f"{name}(): an argument is not a plain value (only plain values reach the program)") from None
        status, answer = candidate_call(name, text)
        if status != "ok":
            if not errors:
                errors.append(answer)
            raise CandidateError(answer)
        try:
            return ast.literal_eval(answer)
        except BaseException:  # noqa: BLE001
            message = f"{name}(): the program's value does not read back as a Python literal"
            if not errors:
                errors.append(message)
            raise CandidateError(message) from None

    stand_in.__name__ = stand_in.__qualname__ = name
    return stand_in


def _assert_text(e: BaseException, sources: Dict[str, str]) -> str:
    """The source line of the assertion that failed (the innermost frame in the test or setup),
    with its message if it has one."""
    line = None
    tb = e.__traceback__
    while tb is not None:
        fn = tb.tb_frame.f_code.co_filename
        if fn in sources and tb.tb_lineno:
            lines = sources[fn].splitlines()
            if 0 < tb.tb_lineno <= len(lines):
                line = lines[tb.tb_lineno - 1].strip()
        tb = tb.tb_next
    try:
        msg = str(e)
    except BaseException:  # noqa: BLE001
        msg = ""
    if line is None:
        return _bound(f"AssertionError: {msg}" if msg else "AssertionError")
    return _bound(f"{line}: {msg}" if msg else line)


def check(setup: str, test: str, names: List[str], max_output: int, candidate_call: CandidateCall) -> Outcome:
    """Runs `setup`, binds each of `names` to a stand-in, then runs `test`, in a fresh module. A stand-in sends its
    arguments to the program's instance through `candidate_call(name, args) -> ("ok", value) or
    ("err", message)`."""
    setup_code, err = _compile(setup, "<setup>")
    if setup_code is None:
        return Outcome(COMPILE_ERROR, _bound(f"test code: {err}"), "")
    test_code, err = _compile(test, "<test>")
    if test_code is None:
        return Outcome(COMPILE_ERROR, _bound(f"test code: {err}"), "")
    sources = {"<setup>": setup, "<test>": test}
    errors: List[str] = []
    module = _module("__main__")
    writer = _Writer(max_output)
    with _Stdio(writer) as io_:
        saved = sys.modules.get("__main__")
        sys.modules["__main__"] = module
        try:
            exec(setup_code, module.__dict__)
            # After the set-up: HumanEval's prompt (the set-up) defines the entry point as a
            # stub, which the stand-in replaces.
            for name in names:
                module.__dict__[name] = _stand_in(name, candidate_call, errors)
            exec(test_code, module.__dict__)
            kind, text = OK, None
        except CandidateError as e:
            kind, text = RUNTIME_ERROR, _bound(str(e))
        except AssertionError as e:
            kind, text = FAILED, _assert_text(e, sources)
        except SystemExit as e:
            status = _exit_status(e)
            kind, text = (OK, None) if status is None else (FAILED, status)
        except MemoryError:
            kind, text = OUT_OF_MEMORY, "MemoryError"
        except BaseException as e:  # noqa: BLE001
            kind, text = FAILED, _exc_line(e)
        finally:
            io_.flush()
            if saved is not None:
                sys.modules["__main__"] = saved
    if errors and kind != OUT_OF_MEMORY:  # the first error of the program's instance wins
        kind, text = RUNTIME_ERROR, _bound(errors[0])
    return _finish(io_, kind, text)
