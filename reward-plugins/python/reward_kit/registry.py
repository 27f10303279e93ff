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

`@group_reward` declares a reward that scores a whole GRPO group (the completions of one prompt) in
one call, for a reward declared `groups = true` in the rewards TOML. Its function takes the same
parameters in the plural, as lists in the group's order (`rollouts`, `completions`, `conversations`
for the messages, `prompts`, `references`, `metadatas`, `ids`) plus `config`, and returns a list of
results, one per rollout, each what a `@reward` returns. Raising fails every rollout of the group,
and so does returning the wrong number of results.
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

__all__ = ["reward", "group_reward", "RewardFunction", "GroupRewardFunction", "ConfigError", "registered"]

PARAMETERS = ("rollout", "completion", "messages", "prompt", "reference", "metadata", "config", "id")
# A group reward's parameters: each a list of the per-rollout one, in the group's order.
GROUP_PARAMETERS = {
    "rollouts": "rollout",
    "completions": "completion",
    "conversations": "messages",
    "prompts": "prompt",
    "references": "reference",
    "metadatas": "metadata",
    "ids": "id",
    "config": "config",
}
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
    return _declare(RewardFunction, name, version, description, metrics, config, validate)


def group_reward(
    *,
    name: str,
    version: str = "0.1.0",
    description: str = "",
    metrics: Sequence[str] = (),
    config: Optional[Mapping[str, Any]] = None,
    validate: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> Callable[[Callable[..., Any]], "GroupRewardFunction"]:
    """Declares a group reward: the function scores a whole GRPO group in one call. The arguments
    are `@reward`'s; the reward must be declared `groups = true` in the rewards TOML, so that the
    server hands the plugin exactly one group per call."""
    return _declare(GroupRewardFunction, name, version, description, metrics, config, validate)


def _declare(cls, name, version, description, metrics, config, validate):
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > 64:
        raise ValueError(f"reward name must be lowercase snake_case, 1 to 64 characters: {name!r}")
    bad = [m for m in metrics if not isinstance(m, str) or not _NAME_RE.match(m)]
    if bad:
        raise ValueError(f"metric names must be lowercase snake_case: {bad}")

    def wrap(fn: Callable[..., Any]):
        spec = cls(fn, name, version, description, list(metrics), config, validate)
        _REGISTERED.append(spec)
        return spec

    return wrap


class RewardFunction:
    """A declared reward. Calling it calls the original function; `score` and `run` score a
    `Rollout` the way the plugin does."""

    # The decorator's name, in messages.
    DECORATOR = "@reward"
    # Each parameter the function may take, with the rollout attribute it reads.
    ACCEPTS: Mapping[str, str] = {p: p for p in PARAMETERS}

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
        unknown = [p for p in params if p not in self.ACCEPTS]
        if unknown:
            raise TypeError(
                f"reward {name!r}: unknown parameter(s) {unknown}; a {self.DECORATOR} function takes any of {list(self.ACCEPTS)}"
            )
        self.parameters: Tuple[str, ...] = tuple(params)
        # How each declared argument is read off what the function scores, resolved once
        # (`config` is not).
        self._getters = tuple((p, self._getter(self.ACCEPTS[p])) for p in self.parameters if p != "config")
        self._takes_config = "config" in self.parameters
        self._config_text: Optional[str] = None
        self._config: Dict[str, Any] = {}
        tracebacks.remember_source(fn)
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", name)

    @staticmethod
    def _getter(field: str) -> Callable[[Any], Any]:
        """Reads the rollout attribute `field` (`rollout`: the rollout itself) off one rollout."""
        return _itself if field == "rollout" else attrgetter(field)

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

    def _call(self, scored: Any, cfg: Dict[str, Any]) -> Any:
        """The function's own answer, with the arguments it declared read off `scored` (a
        rollout; a group reward's: the group's list of rollouts)."""
        kwargs = {}
        for p, get in self._getters:
            kwargs[p] = get(scored)
        if self._takes_config:
            kwargs["config"] = cfg
        return self.fn(**kwargs)

    def _checked(self, score: Score) -> Score:
        for names in (score.rewards, score.metrics):
            for n in names:
                if n not in self._declared:
                    raise ValueError(
                        f"metric `{n}` is not declared: add it to {self.DECORATOR}(metrics=[...]) (declared: {sorted(self._declared)})"
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
            return "ok", self._result(self._call(rollout, cfg))
        except InvalidInput as e:
            return "invalid", str(e) or "invalid input"
        except Exception as e:  # noqa: BLE001 - every error of the researcher's code is reported
            return "failed", tracebacks.format_exception(e)

    def _result(self, answer: Any) -> Any:
        """One rollout's answer as the plugin returns it: a bare finite number as itself, else a
        checked `Score`. Raises on an answer that is neither."""
        kind = type(answer)
        if (kind is float or kind is int) and math.isfinite(answer):
            return answer
        return self._checked(to_score(answer))


class GroupRewardFunction(RewardFunction):
    """A declared group reward (`@group_reward`). Calling it calls the original function;
    `score_group` and `run_group` score a list of rollouts, one group, the way the plugin does.

    It shares `RewardFunction`'s config handling, result conversion and error reporting; what
    differs is that the function gets lists and answers for the whole group at once, and that
    one failure is every rollout's.
    """

    DECORATOR = "@group_reward"
    ACCEPTS = GROUP_PARAMETERS

    @staticmethod
    def _getter(field: str) -> Callable[[Any], Any]:
        if field == "rollout":
            return list
        get = attrgetter(field)
        return lambda rollouts: [get(r) for r in rollouts]

    def __repr__(self) -> str:
        return f"<group reward {self.name} {self.version}>"

    def score(self, rollout: Rollout, config: Any = None) -> Score:
        """A group reward scores groups: `score_group([rollout])` for a group of one."""
        return self.score_group([rollout], config)[0]

    def score_group(self, rollouts: Sequence[Rollout], config: Any = None) -> List[Score]:
        """Scores one group natively, one `Score` per rollout; raises what the function raises,
        and `ValueError` for a wrong number of results."""
        cfg = self.config_for(config) if isinstance(config, str) else self.parse_config(config)
        answers = self._answers(rollouts, cfg)
        return [self._checked(to_score(a)) for a in answers]

    def _answers(self, rollouts: Sequence[Any], cfg: Dict[str, Any]) -> List[Any]:
        """The function's answers for the group, checked to be one per rollout."""
        answers = self._call(rollouts, cfg)
        if not isinstance(answers, (list, tuple)):
            raise TypeError(f"a group reward returns a list with one result per rollout, got {type(answers).__name__}")
        if len(answers) != len(rollouts):
            raise _WrongCount(
                f"plugin \"{self.name}\" version {self.version}: the group reward returned {len(answers)} results "
                f"for a group of {len(rollouts)} rollouts"
            )
        return list(answers)

    def run(self, rollout: Any, config_text: str) -> Tuple[str, Any]:
        """`run_group([rollout])` for a group of one."""
        return self.run_group([rollout], config_text)[0]

    def run_group(self, rollouts: Sequence[Any], config_text: str) -> List[Tuple[str, Any]]:
        """One group as the plugin answers it: per rollout `("ok", Score)`, `("invalid", message)`
        or `("failed", text)`. Never raises."""
        try:
            cfg = self.config_for(config_text)
        except ConfigError as e:
            return [("failed", f"config refused: {e}")] * len(rollouts)
        return [
            (kind, Score(payload) if kind == "ok" and type(payload) is not Score else payload)
            for kind, payload in self.run_group_parsed(rollouts, cfg)
        ]

    def run_parsed(self, rollout: Any, cfg: Dict[str, Any]) -> Tuple[str, Any]:
        return self.run_group_parsed([rollout], cfg)[0]

    def run_group_parsed(self, rollouts: Sequence[Any], cfg: Dict[str, Any]) -> List[Tuple[str, Any]]:
        """`run_group` with the config already parsed: the plugin's per-call path. A group
        succeeds or fails as a whole: an exception, a wrong number of results or one bad result
        fails every rollout with the same message. An empty group calls nothing."""
        if not rollouts:
            return []
        try:
            answers = self._answers(rollouts, cfg)
        except InvalidInput as e:
            return [("invalid", str(e) or "invalid input")] * len(rollouts)
        except _WrongCount as e:
            return [("failed", str(e))] * len(rollouts)
        except Exception as e:  # noqa: BLE001 - every error of the researcher's code is reported
            return [("failed", tracebacks.format_exception(e))] * len(rollouts)
        results = []
        for index, answer in enumerate(answers):
            try:
                results.append(("ok", self._result(answer)))
            except Exception as e:  # noqa: BLE001 - a bad result (undeclared metric, NaN) fails the group
                rid = getattr(rollouts[index], "id", "")
                return [("failed", f"result {index} (rollout {rid!r}) of the group: {type(e).__name__}: {e}")] * len(rollouts)
        return results


class _WrongCount(ValueError):
    """A group reward returned more or fewer results than its group has rollouts."""


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
