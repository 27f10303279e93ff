"""The data a reward sees and returns: plain Python, the same natively and inside the sandbox."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = ["Message", "Rollout", "Score", "InvalidInput", "Number"]

Number = Union[int, float]

_UNSET = object()


@dataclass(frozen=True)
class Message:
    """One turn of the conversation: `role` (`system`, `user`, `assistant`, `nova_assistant`,
    `tool`, ...) and its text."""

    role: str
    content: str


class InvalidInput(Exception):
    """Raise it when the rollout itself is unusable for this reward (no reference, a reference of
    the wrong shape, ...). The rollout is answered `INVALID_INPUT` with the message, not
    `PLUGIN_ERROR`: the data is wrong, not the reward."""


class Rollout:
    """One generated answer to score.

    `reference` and `metadata` are the parsed JSON (`None` / `{}` when absent), parsed on first
    use; the raw texts are `reference_text` and `metadata_text`. A reference or metadata that is
    not valid JSON raises `InvalidInput` when read.
    """

    __slots__ = ("id", "messages", "completion", "reference_text", "metadata_text", "_reference", "_metadata")

    def __init__(
        self,
        id: str = "",
        messages: Sequence[Message] = (),
        completion: str = "",
        reference: Any = None,
        metadata: Any = None,
        *,
        reference_text: Optional[str] = None,
        metadata_text: Optional[str] = None,
    ) -> None:
        self.id = id
        self.messages = list(messages)
        self.completion = completion
        # Either parsed values (natively, in tests) or the JSON texts (from the host).
        if reference_text is None:
            self._reference = reference
            self.reference_text = json.dumps(reference)
        else:
            self._reference = _UNSET
            self.reference_text = reference_text
        if metadata_text is None:
            self._metadata = {} if metadata is None else metadata
            self.metadata_text = json.dumps(self._metadata)
        else:
            self._metadata = _UNSET
            self.metadata_text = metadata_text

    @classmethod
    def from_json(cls, record: Mapping[str, Any], index: int = 0) -> "Rollout":
        """A rollout from one JSONL record, in either shape the offline scorer reads: Nova RFT
        (`{id, messages, reference_answer}`) or plain (`{id?, prompt, completion, reference?}`).
        For running a reward natively on the same files. A `group` field names the rollout's GRPO
        group (see `cli.run_file`) and, as in the server, is not part of the metadata."""
        rid = str(record.get("id", f"line-{index + 1}"))
        if "messages" in record:
            messages = [Message(m.get("role", ""), _text(m.get("content", ""))) for m in record["messages"]]
            completion = ""
            for m in reversed(messages):
                if m.role in ("assistant", "nova_assistant"):
                    completion = m.content
                    break
            reference = record.get("reference_answer")
            if reference is None and isinstance(record.get("metadata"), dict):
                reference = record["metadata"].get("reference_answer")
            known = {"id", "messages", "reference_answer", "group"}
        else:
            messages = [Message("user", _text(record.get("prompt", ""))), Message("assistant", _text(record.get("completion", "")))]
            completion = messages[-1].content
            reference = record.get("reference")
            known = {"id", "prompt", "completion", "reference", "group"}
        metadata = {k: v for k, v in record.items() if k not in known}
        return cls(rid, messages, completion, reference, metadata)

    @property
    def reference(self) -> Any:
        """The dataset's reference answer, parsed from JSON; `None` when absent."""
        if self._reference is _UNSET:
            self._reference = _parse_json("reference", self.reference_text, None)
        return self._reference

    @property
    def metadata(self) -> Any:
        """The rollout's other fields, parsed from JSON; `{}` when absent."""
        if self._metadata is _UNSET:
            self._metadata = _parse_json("metadata", self.metadata_text, {})
        return self._metadata

    @property
    def prompt(self) -> str:
        """The first user turn's text ("" when there is none): where datasets put the question."""
        for m in self.messages:
            if m.role == "user":
                return m.content
        return ""

    def __repr__(self) -> str:
        return f"Rollout(id={self.id!r}, completion={self.completion[:40]!r}, reference={self.reference_text[:40]!r})"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _parse_json(what: str, text: str, empty: Any) -> Any:
    if not text or not text.strip():
        return empty
    try:
        value = json.loads(text)
    except ValueError as e:
        raise InvalidInput(f"{what} is not valid JSON: {e}") from None
    return empty if value is None else value


@dataclass
class Score:
    """A rollout's score: the reward `value`, named numbers beside it and a reason.

    `rewards` are the checks the value is made of (reward-kind metrics, `Reward` in Nova's
    `metrics_list`); `metrics` are diagnostics only. Every value must be a finite number; names
    are lowercase `snake_case` and must be declared in `@reward(metrics=[...])`.
    """

    value: Number
    rewards: Dict[str, Number] = field(default_factory=dict)
    metrics: Dict[str, Number] = field(default_factory=dict)
    reason: Optional[str] = None

    def get(self, name: str) -> Optional[float]:
        """The named reward or metric, if present."""
        if name in self.rewards:
            return float(self.rewards[name])
        if name in self.metrics:
            return float(self.metrics[name])
        return None


def to_score(answer: Any) -> Score:
    """What a reward function may return, as a `Score`: a number (bool counts as 0/1), a `Score`,
    `(value, rewards)` or `(value, rewards, reason)`. Raises TypeError/ValueError otherwise."""
    if isinstance(answer, Score):
        score = answer
    elif isinstance(answer, (int, float)):
        score = Score(answer)
    elif isinstance(answer, tuple) and len(answer) in (2, 3):
        value, rewards = answer[0], answer[1]
        if not isinstance(rewards, Mapping):
            raise TypeError(f"a returned (value, rewards) pair needs a dict of rewards, got {type(rewards).__name__}")
        reason = answer[2] if len(answer) == 3 else None
        score = Score(value, dict(rewards), {}, reason)
    else:
        raise TypeError(
            f"a reward returns a number, a Score or (value, {{name: number}}), got {type(answer).__name__}: {answer!r:.80}"
        )
    _check_number("the score", score.value)
    for kind in (score.rewards, score.metrics):
        for name, v in kind.items():
            _check_number(f"metric `{name}`", v)
    if score.reason is not None and not isinstance(score.reason, str):
        raise TypeError(f"reason must be a str or None, got {type(score.reason).__name__}")
    return score


def _check_number(what: str, v: Any) -> None:
    if not isinstance(v, (int, float)):
        raise TypeError(f"{what} must be a number, got {type(v).__name__}: {v!r:.80}")
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {v}")


def metric_items(score: Score) -> List[Tuple[str, float, bool]]:
    """(name, value, is_reward) for every metric of a score, rewards first."""
    out = [(n, float(v), True) for n, v in score.rewards.items()]
    out.extend((n, float(v), False) for n, v in score.metrics.items())
    return out
