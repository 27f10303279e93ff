"""The componentize-py entry module of the Python interpreter component (world `program-runner`
in reward-plugins/wit/programs.wit): the exported `interpreter` interface over runner_core.

Everything is imported here, at build time: componentize-py pre-initialises the interpreter and
bundles only the modules imported then; the sandbox has no file system to import from later.
The list below is what competitive-programming and HumanEval/MBPP solutions commonly import.
"""

# Pre-imported so `import X` works inside a run.
import array  # noqa: F401
import bisect  # noqa: F401
import cmath  # noqa: F401
import collections  # noqa: F401
import collections.abc  # noqa: F401
import copy  # noqa: F401
import dataclasses  # noqa: F401
import datetime  # noqa: F401
import decimal  # noqa: F401
import enum  # noqa: F401
import fractions  # noqa: F401
import functools  # noqa: F401
import hashlib  # noqa: F401
import heapq  # noqa: F401
import io  # noqa: F401
import itertools  # noqa: F401
import json  # noqa: F401
import math  # noqa: F401
import operator  # noqa: F401
import random  # noqa: F401
import re  # noqa: F401
import statistics  # noqa: F401
import string  # noqa: F401
import sys  # noqa: F401
import textwrap  # noqa: F401
import typing  # noqa: F401
import numbers  # noqa: F401
import traceback  # noqa: F401
import time  # noqa: F401
import types  # noqa: F401
import unicodedata  # noqa: F401
import calendar  # noqa: F401
import queue  # noqa: F401
import contextlib  # noqa: F401
import abc  # noqa: F401
import ast  # noqa: F401
import struct  # noqa: F401
import base64  # noqa: F401
import binascii  # noqa: F401
import pprint  # noqa: F401
import weakref  # noqa: F401
import warnings  # noqa: F401

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import interpreter as wit
from wit_world.imports import candidate

import runner_core as core

_ENCODINGS = {wit.Encoding.JSON: "json", wit.Encoding.PYTHON: "python"}


def _ending(kind: str, text):
    if kind == core.OK:
        return wit.Ending_Ok()
    if kind == core.COMPILE_ERROR:
        return wit.Ending_CompileError(text or "")
    if kind == core.RUNTIME_ERROR:
        return wit.Ending_RuntimeError(text or "")
    if kind == core.FAILED:
        return wit.Ending_Failed(text or "")
    if kind == core.OUT_OF_MEMORY:
        return wit.Ending_OutOfMemory(text or "MemoryError")
    if kind == core.OUTPUT_LIMIT:
        return wit.Ending_OutputLimit()
    return wit.Ending_RuntimeError(f"runner: unknown ending {kind!r}")


def _outcome(o: core.Outcome) -> wit.Outcome:
    return wit.Outcome(ending=_ending(o.kind, o.text), stdout=core._clean(o.stdout), value=o.value)


def _candidate_call(function: str, args: str):
    try:
        return ("ok", candidate.call(function, args))
    except Err as e:
        return ("err", str(e.value))


class Interpreter(exports.Interpreter):
    """The exported `interpreter` interface: one run per fresh instance (`load` then `call`s)."""

    def run_script(self, program: str, stdin: str, max_output: int) -> wit.Outcome:
        return _outcome(core.run_script(program, stdin, max_output))

    def load(self, program: str, max_output: int) -> wit.Outcome:
        return _outcome(core.load(program, max_output))

    def call(self, function: str, args: str, encoding: wit.Encoding) -> wit.Outcome:
        return _outcome(core.call(function, args, _ENCODINGS.get(encoding, "json")))

    def check(self, setup: str, test: str, names, max_output: int) -> wit.Outcome:
        return _outcome(core.check(setup, test, list(names), max_output, _candidate_call))


# Last, after every build-time import: from here on `open` is refused (see runner_core).
core.enter_sandbox()
