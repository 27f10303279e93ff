"""The component side: implements the WIT `reward` interface (reward-plugins/wit/reward.wit) on top
of the one reward the plugin's module defines. Only imported inside a componentize-py build,
where the generated `wit_world` bindings exist."""

from __future__ import annotations

from typing import Any, List, Optional

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.exports import reward as wit

try:
    from wit_world.imports import meter
except ImportError:
    # Built for the world without imports (`reward-plugin`), as the kit builds a group reward: the
    # host then meters each call as a whole (a group reward's call is its group).
    meter = None

from . import registry, tracebacks
from .registry import ConfigError, GroupRewardFunction, RewardFunction
from .types import metric_items

_SPEC: Optional[RewardFunction] = None


def bind(module: Any, display_name: Optional[str] = None) -> RewardFunction:
    """Picks the reward the user's module defines; called at build time (pre-initialisation), so a
    module with no reward, or with several, fails the build rather than the server."""
    global _SPEC
    found = registry.registered()
    if not found:
        raise RuntimeError(f"{module.__name__}: no @reward function defined (nor a @group_reward)")
    if len(found) > 1:
        names = ", ".join(s.name for s in found)
        raise RuntimeError(f"{module.__name__}: one reward per plugin, found {len(found)}: {names}")
    tracebacks.remember_source(module)
    if display_name and getattr(module, "__file__", None):
        tracebacks.DISPLAY_NAMES[module.__file__] = display_name
    spec = found[0]
    if type(spec) is GroupRewardFunction and meter is not None:
        # The host requires a plugin that imports `meter` to meter every rollout of a call, while a
        # group runs on one budget: the kit's build picks the world without imports for it.
        raise RuntimeError(f"{module.__name__}: a @group_reward must be built for the world without `meter` (`reward-plugin`)")
    _SPEC = spec
    return _SPEC


_REWARD = wit.MetricKind.REWARD
_METRIC = wit.MetricKind.METRIC


class Reward(exports.Reward):
    """The exported `reward` interface."""

    def info(self) -> wit.PluginInfo:
        s = _SPEC
        return wit.PluginInfo(name=s.name, version=s.version, description=s.description, metrics=list(s.metrics))

    def check_config(self, config: str) -> None:
        try:
            _SPEC.config_for(config)
        except ConfigError as e:
            raise Err(str(e))

    def score_batch(self, config: str, rollouts: List[wit.Rollout]) -> List[Any]:
        spec = _SPEC
        run = spec.run_parsed
        try:
            cfg = spec.config_for(config)  # once a batch: the host sends one config per call
        except ConfigError as e:
            refused = ("failed", f"config refused: {e}")
            if type(spec) is GroupRewardFunction:
                return [_answer(*refused)] * len(rollouts)
            cfg, run = None, lambda _rollout, _cfg: refused
        if type(spec) is GroupRewardFunction:
            # The batch is one group (the host guarantees it for a `groups = true` reward), scored
            # in one call on the call's budget (the group's size times the reward's fuel): no meter
            # calls, as in the Rust SDK's `export_group_reward!`.
            group = [_GuestRollout(r) for r in rollouts]
            return [_answer(kind, payload) for kind, payload in spec.run_group_parsed(group, cfg)]
        out = []
        append = out.append
        begin, end = (meter.begin, meter.end) if meter is not None else (_unmetered, _unmetered)
        for index, r in enumerate(rollouts):
            # The host meters each rollout on its own budget between begin and end, so a batch is
            # one call (the call's fixed cost is shared) while fuel and timeouts stay per rollout.
            begin(index)
            kind, payload = run(_GuestRollout(r), cfg)
            end(index)
            append(_answer(kind, payload))
        return out


def _unmetered(_index: int) -> None:
    """`meter.begin`/`end` for a component without `meter`: the host sends one rollout a call."""


def _answer(kind: str, payload: Any) -> Any:
    """One rollout's `(kind, payload)` from the kit as the WIT result."""
    if kind == "ok":
        if type(payload) is _KitScore:
            metrics = [wit.Metric(name, value, _REWARD if is_reward else _METRIC) for name, value, is_reward in metric_items(payload)]
            return Ok(wit.Score(float(payload.value), metrics, payload.reason))
        return Ok(wit.Score(float(payload), [], None))
    if kind == "invalid":
        return Err(wit.RolloutError_InvalidInput(payload))
    return Err(wit.RolloutError_Failed(payload))


from .types import _UNSET, Rollout as _Rollout, Score as _KitScore  # noqa: E402


class _GuestRollout(_Rollout):
    """A kit `Rollout` over the host's record, without copying the messages; the reference and
    metadata stay JSON text until the reward reads them (as `Rollout` does with texts)."""

    __slots__ = ()

    def __init__(self, r: wit.Rollout) -> None:
        self.id = r.id
        self.messages = r.messages
        self.completion = r.completion
        self.reference_text = r.reference
        self.metadata_text = r.metadata
        self._reference = self._metadata = _UNSET
