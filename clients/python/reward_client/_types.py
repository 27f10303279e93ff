"""The client's value types: what goes in (`Rollout`), what comes out (`ScoredRollout`), and errors."""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence


class Status(str, enum.Enum):
    """How a rollout's scoring ended (the proto's `Status`, by name)."""

    OK = "OK"
    INVALID_INPUT = "INVALID_INPUT"
    PLUGIN_ERROR = "PLUGIN_ERROR"
    TIMEOUT = "TIMEOUT"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    INTERNAL = "INTERNAL"
    JUDGE_ERROR = "JUDGE_ERROR"
    STATUS_UNSPECIFIED = "STATUS_UNSPECIFIED"


@dataclass(frozen=True)
class Provenance:
    """Where a score came from: the reward, the plugin's sha256, the reward definition's hash, and
    the models its judges are configured to ask (empty for a reward that asks none)."""

    reward: str
    plugin_sha256: str
    config_hash: str
    judge_models: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoredRollout:
    """One rollout's answer.

    `score` is None when the rollout failed under the reward's `abstain` (or `fail`) policy; under
    `zero` a failed rollout has a score of 0.0, so look at `status` (or `ok`), never at the score,
    to tell a failure from a wrong answer.
    """

    id: str
    score: float | None
    status: Status
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    provenance: Provenance | None = None
    cached: bool = False
    reason: str | None = None
    instructions: int = 0
    latency_us: int = 0

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


@dataclass
class Rollout:
    """One generated answer to score.

    `prompt` is a string (one user turn) or the conversation before the answer as
    `[{"role", "content"}, ...]`; `reference` is the dataset's reference answer (any JSON value);
    `metadata` more fields for the plugin (a JSON object; the keys `id`, `messages`,
    `reference_answer` and `group` are reserved by the HTTP record shape). Without an `id`, the rollout's
    position in its request is used. `group` names the GRPO group (the completions of one prompt)
    for rewards that score whole groups (`groups = true` on the server); without it the server
    groups rollouts by prompt. A group is scored within one request: keep a group's rollouts in
    one `score` call, under `max_request_rollouts`.
    """

    completion: str
    prompt: str | Sequence[Mapping[str, Any]] | None = None
    reference: Any = None
    metadata: Mapping[str, Any] | None = None
    id: str | None = None
    group: str | None = None


RESERVED_METADATA_KEYS = frozenset({"id", "messages", "reference_answer", "group"})


def as_rollout(r: Rollout | Mapping[str, Any] | str) -> Rollout:
    """A `Rollout` from a `Rollout`, a dict of its fields, or a bare completion string."""
    if isinstance(r, Rollout):
        return r
    if isinstance(r, str):
        return Rollout(completion=r)
    if isinstance(r, Mapping):
        unknown = set(r) - {"completion", "prompt", "reference", "metadata", "id", "group"}
        if unknown:
            raise ValueError(f"unknown rollout fields {sorted(unknown)}; put them under `metadata`")
        return Rollout(**r)
    raise TypeError(f"a rollout is a Rollout, a dict or a completion string, not {type(r).__name__}")


def messages_of(r: Rollout) -> list[dict[str, str]]:
    """The conversation the server scores: the prompt turns, then the completion as `assistant`."""
    if r.prompt is None:
        turns: list[dict[str, str]] = []
    elif isinstance(r.prompt, str):
        turns = [{"role": "user", "content": r.prompt}]
    else:
        turns = [{"role": str(m["role"]), "content": text_of(m.get("content"))} for m in r.prompt]
    if not isinstance(r.completion, str):
        raise TypeError(f"`completion` must be a string, not {type(r.completion).__name__}")
    return turns + [{"role": "assistant", "content": r.completion}]


def text_of(content: Any) -> str:
    """A message content as text: a string, or the text of a list of `{type: text, text}` parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and part.get("type", "text") == "text":
                texts.append(str(part.get("text", "")))
        return "".join(texts)
    return str(content)


def checked_metadata(r: Rollout) -> dict[str, Any]:
    meta = dict(r.metadata or {})
    clash = RESERVED_METADATA_KEYS & set(meta)
    if clash:
        raise ValueError(f"metadata keys {sorted(clash)} are reserved (the record's own fields)")
    return meta


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays (veRL's extra_info), sets, anything else as its text.
    for attr in ("tolist", "item"):
        f = getattr(value, attr, None)
        if callable(f):
            return f()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, allow_nan=False, separators=(",", ":"))


def finite_or_none(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------


class RewardClientError(Exception):
    """Base of the errors a call raises. A rollout that fails is not an error: it is a
    `ScoredRollout` with a status other than OK."""


class RequestFailed(RewardClientError):
    """The server refused or failed the request.

    `code` is the HTTP status (int) or the gRPC code name (`"RESOURCE_EXHAUSTED"`); `kind` the
    server's short label when it gave one (`overloaded`, `unknown_reward`, ...); `attempts` how many
    times the request was sent; `retryable` whether the failure was of a kind that is retried
    (see `RetryPolicy`); `retry_after` the server's pushback in seconds, if it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | str,
        kind: str | None = None,
        retry_after: float | None = None,
        retryable: bool = False,
        attempts: int = 1,
    ):
        super().__init__(message)
        self.code = code
        self.kind = kind
        self.retry_after = retry_after
        self.retryable = retryable
        self.attempts = attempts


class ServerUnreachable(RewardClientError):
    """No answer from the server (connection refused, reset, or no response) after every attempt."""

    def __init__(self, message: str, *, attempts: int = 1):
        super().__init__(message)
        self.attempts = attempts


class GroupRewardSplit(RewardClientError, ValueError):
    """A call that batches rollouts (`score_one`, `score_many`, veRL's one-at-a-time
    `compute_score`) was asked to score a reward that scores whole GRPO groups: its groups could be
    split across requests and each part scored as a group of its own. Nothing was sent; use
    `score` with each group whole."""


class DeadlineExceeded(RewardClientError):
    """The call's deadline passed before an answer came (locally, or the server's 504 /
    DEADLINE_EXCEEDED). Never retried."""
