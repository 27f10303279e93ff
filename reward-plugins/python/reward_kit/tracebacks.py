"""Tracebacks that need no file system.

Inside the sandbox there are no files: the standard `traceback` module would look source lines up
on disk (`linecache`), which the plugin cannot do. The kit remembers the source of the reward's
module when it is defined (at build time, when files are there) and formats tracebacks from that,
in the standard layout, so the reason of a `PLUGIN_ERROR` reads like the traceback a researcher
sees natively.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List

__all__ = ["remember_source", "format_exception"]

_SOURCES: Dict[str, List[str]] = {}
# File names shown instead of the ones the interpreter knows (inside a component the reward's file
# is `/2/NAME.py`; the build maps it back to the name the researcher wrote).
DISPLAY_NAMES: Dict[str, str] = {}
# Frames of the kit itself are left out: the traceback starts at the researcher's code.
_KIT_DIR = __file__.rsplit("/", 1)[0] + "/"
# A traceback longer than this many frames keeps its first and last frames only.
MAX_FRAMES = 40


def remember_source(obj: Any) -> None:
    """Keeps the source lines of the file that defines `obj` (a function or module), best effort."""
    code = getattr(obj, "__code__", None)
    filename = code.co_filename if code is not None else getattr(obj, "__file__", None)
    if not filename or filename in _SOURCES:
        return
    try:
        with open(filename, encoding="utf-8") as f:
            _SOURCES[filename] = f.read().splitlines()
    except Exception:  # noqa: BLE001 - no source is fine: the frame lines still show
        _SOURCES[filename] = []


def _line(filename: str, lineno: int) -> str:
    lines = _SOURCES.get(filename)
    if lines and 0 < lineno <= len(lines):
        return lines[lineno - 1].strip()
    return ""


def _frames(tb: Any) -> List[str]:
    out = []
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename.startswith(_KIT_DIR):
        tb = tb.tb_next
    while tb is not None:
        code = tb.tb_frame.f_code
        lineno = tb.tb_lineno
        shown = DISPLAY_NAMES.get(code.co_filename, code.co_filename)
        entry = f'  File "{shown}", line {lineno}, in {code.co_name}'
        src = _line(code.co_filename, lineno)
        if src:
            entry += f"\n    {src}"
        out.append(entry)
        tb = tb.tb_next
    if len(out) > MAX_FRAMES:
        half = MAX_FRAMES // 2
        out = out[:half] + [f"  [... {len(out) - 2 * half} more frames ...]"] + out[-half:]
    return out


def _one(exc: BaseException) -> str:
    name = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ("builtins", "__main__"):
        name = f"{module}.{name}"
    text = str(exc)
    head = "Traceback (most recent call last):\n"
    frames = _frames(exc.__traceback__)
    body = "\n".join(frames) + "\n" if frames else ""
    return f"{head}{body}{name}: {text}" if text else f"{head}{body}{name}"


def format_exception(exc: BaseException) -> str:
    """The traceback of `exc` (with its causes, as Python prints them), from remembered sources."""
    # (exception, how it links to the one before it in this list), newest first.
    items = []
    seen = set()
    cur: Any = exc
    link = ""
    while cur is not None and id(cur) not in seen and len(items) < 5:
        seen.add(id(cur))
        items.append((cur, link))
        if cur.__cause__ is not None:
            cur, link = cur.__cause__, "cause"
        elif cur.__context__ is not None and not cur.__suppress_context__:
            cur, link = cur.__context__, "context"
        else:
            cur = None
    out = []
    for i in range(len(items) - 1, -1, -1):
        item, link = items[i]
        out.append(_one(item))
        if i > 0:
            out.append(
                "\nThe above exception was the direct cause of the following exception:\n"
                if link == "cause"
                else "\nDuring handling of the above exception, another exception occurred:\n"
            )
    return "\n".join(out)


def _self_check() -> None:  # pragma: no cover - used by hand
    try:
        1 / 0
    except ZeroDivisionError as e:
        sys.stdout.write(format_exception(e) + "\n")
