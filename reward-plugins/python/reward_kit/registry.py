"""The `@reward` decorator: a plain function becomes a reward plugin.

The decorated function takes any of these parameters, by name, in any order:

| name | what |
| --- | --- |
| `rollout` | the whole `Rollout` |
| `completion` | the generated answer's text (the last assistant turn) |
| `messages` | the conversation, a list of objects with `.role` and `.content` |
| `prompt` | the first user turn's text |
| `reference` | the dataset's reference answer, parsed from JSON (`None` when absent) |
| `metadata` | the rollout's other fields, parsed from JSON (`{}` when absent) |
| `config` | the reward's config: the `config=` defaults updated with the rewards TOML's `config` |
| `id` | the caller's rollout id |

It returns a number, a `Score`, or `(value, {reward_name: number})`. Raising `InvalidInput` answers
the rollout `INVALID_INPUT`; any other exception answers `PLUGIN_ERROR` with the traceback.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from operator import attrgetter
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .types import InvalidInput, Rollout, Score, to_score
from . import tracebacks

__all__ = ["reward", "RewardFunction", "ConfigError", "registered"]

PARAMETERS = ("rollout", "completion", "messages", "prompt", "reference", "metadata", "config", "id")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

_REGISTERED: List["RewardFunction"] = []


class ConfigError(ValueError):
    """A reward config the reward refuses; the message names the field."""


def registered() -> List["RewardFunction"]:
    """Every reward defined so far in this process, in definition order."""
    return list(_REGISTERED)


def reward(
    *,
    name: str,
    version: str = "0.1.0",
    description: str = "",
    metrics: Sequence[str] = (),
    config: Optional[Mapping[str, Any]] = None,
    validate: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> Callable[[Callable[..., Any]], "RewardFunction"]:
    """Declares a reward.

    - `name`: short lowercase name (the plugin's name in `reward-server list`).
    - `version`: the plugin's own version; errors quote it.
    - `metrics`: every reward or metric name the function may emit. The rewards TOML's formulas
      can only use declared names, so an undeclared name is a `PLUGIN_ERROR`.
    - `config`: the config keys the reward accepts, with their defaults. A key not listed, or a
      value whose type differs from its default's (int and float mix; a `None` default takes
      anything), is refused when the server loads the config. `None` accepts any JSON object.
    - `validate`: called with the merged config at load time; raise `ValueError("field: why")`.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > 64:
        raise ValueError(f"reward name must be lowercase snake_case, 1 to 64 characters: {name!r}")
    bad = [m for m in metrics if not isinstance(m, str) or not _NAME_RE.match(m)]
    if bad:
        raise ValueError(f"metric names must be lowercase snake_case: {bad}")

    def wrap(fn: Callable[..., Any]) -> RewardFunction:
        spec = RewardFunction(fn, name, version, description, list(metrics), config, validate)
        _REGISTERED.append(spec)
        return spec

    return wrap


class RewardFunction:
    """A declared reward. Calling it calls the original function; `score` and `run` score a
    `Rollout` the way the plugin does."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str,
        version: str,
        description: str,
        metrics: List[str],
        defaults: Optional[Mapping[str, Any]],
        validate: Optional[Callable[[Dict[str, Any]], None]],
    ) -> None:
        self.fn = fn
        self.name = name
        self.version = version
        self.description = description or (inspect.getdoc(fn) or "").split("\n", 1)[0]
        self.metrics = metrics
        self._declared = frozenset(metrics)
        self.defaults = dict(defaults) if defaults is not None else None
        self.validate = validate
        params = inspect.signature(fn).parameters
        unknown = [p for p in params if p not in PARAMETERS]
        if unknown:
            raise TypeError(
                f"reward {name!r}: unknown parameter(s) {unknown}; a reward function takes any of {list(PARAMETERS)}"
            )
        self.parameters: Tuple[str, ...] = tuple(params)
        # How each declared argument is read off a rollout, resolved once (`config` is not).
        self._getters = tuple((p, _itself if p == "rollout" else attrgetter(p)) for p in self.parameters if p != "config")
        self._takes_config = "config" in self.parameters
        self._config_text: Optional[str] = None
        self._config: Dict[str, Any] = {}
        tracebacks.remember_source(fn)
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<reward {self.name} {self.version}>"

    # ---- config ------------------------------------------------------------------------------

    def parse_config(self, text: Any = None) -> Dict[str, Any]:
        """The merged config for a config given as JSON text, a dict or None. Raises ConfigError."""
        if text is None:
            given: Any = {}
        elif isinstance(text, str):
            if not text.strip():
                given = {}
            else:
                try:
                    given = json.loads(text)
                except ValueError as e:
                    raise ConfigError(f"config is not valid JSON: {e}") from None
        else:
            given = text
        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise ConfigError(f"config must be a JSON object, got {type(given).__name__}")
        if self.defaults is None:
            merged = dict(given)
        else:
            merged = dict(self.defaults)
            for key, value in given.items():
                if key not in self.defaults:
                    known = ", ".join(sorted(self.defaults)) or "none"
                    raise ConfigError(f"unknown field `{key}` (known: {known})")
                _check_type(key, value, self.defaults[key])
                merged[key] = value
        if self.validate is not None:
            try:
                self.validate(merged)
            except (ValueError, TypeError) as e:
                raise ConfigError(str(e)) from None
            except Exception as e:  # noqa: BLE001 - the researcher's validator may raise anything
                raise ConfigError(f"config check raised:\n{tracebacks.format_exception(e)}") from None
        return merged

    def config_for(self, text: str) -> Dict[str, Any]:
        """`parse_config`, cached for the last text seen (the host sends the same text each call)."""
        if text != self._config_text:
            self._config = self.parse_config(text)
            self._config_text = text
        return self._config

    # ---- scoring -----------------------------------------------------------------------------

    def score(self, rollout: Rollout, config: Any = None) -> Score:
        """Scores one rollout natively; raises what the function raises (InvalidInput included)."""
        cfg = self.config_for(config) if isinstance(config, str) else self.parse_config(config)
        return self._score(rollout, cfg)

    def _score(self, rollout: Any, cfg: Dict[str, Any]) -> Score:
        answer = self._call(rollout, cfg)
        return self._checked(to_score(answer))

    def _call(self, rollout: Any, cfg: Dict[str, Any]) -> Any:
        """The function's own answer, with the arguments it declared."""
        kwargs = {}
        for p, get in self._getters:
            kwargs[p] = get(rollout)
        if self._takes_config:
            kwargs["config"] = cfg
        return self.fn(**kwargs)

    def _checked(self, score: Score) -> Score:
        for names in (score.rewards, score.metrics):
            for n in names:
                if n not in self._declared:
                    raise ValueError(
                        f"metric `{n}` is not declared: add it to @reward(metrics=[...]) (declared: {sorted(self._declared)})"
                    )
        return score

    def run(self, rollout: Any, config_text: str) -> Tuple[str, Any]:
        """One rollout as the plugin answers it: `("ok", Score)`, `("invalid", message)` or
        `("failed", traceback text)`. Never raises."""
        try:
            cfg = self.config_for(config_text)
        except ConfigError as e:
            return "failed", f"config refused: {e}"
        kind, payload = self.run_parsed(rollout, cfg)
        return kind, Score(payload) if kind == "ok" and type(payload) is not Score else payload

    def run_parsed(self, rollout: Any, cfg: Dict[str, Any]) -> Tuple[str, Any]:
        """`run` with the config already parsed (by `config_for`): the plugin's per-rollout path.
        A bare finite number comes back as itself, not wrapped in a `Score` (`to_score` would
        give `Score(value)`): the common answer costs no object."""
        try:
            answer = self._call(rollout, cfg)
            kind = type(answer)
            if (kind is float or kind is int) and math.isfinite(answer):
                return "ok", answer
            return "ok", self._checked(to_score(answer))
        except InvalidInput as e:
            return "invalid", str(e) or "invalid input"
        except Exception as e:  # noqa: BLE001 - every error of the researcher's code is reported
            return "failed", tracebacks.format_exception(e)


def _itself(rollout: Any) -> Any:
    return rollout


def _check_type(key: str, value: Any, default: Any) -> None:
    if default is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        want = "a boolean"
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        want = "a number"
    elif isinstance(default, str):
        ok = isinstance(value, str)
        want = "a string"
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, list)
        want = "a list"
    elif isinstance(default, dict):
        ok = isinstance(value, dict)
        want = "an object"
    else:
        return
    if not ok:
        raise ConfigError(f"`{key}` must be {want} (like its default {json.dumps(default)}), got {json.dumps(value)}")
