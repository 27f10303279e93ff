"""veRL: `compute_score` functions over the client.

veRL's reward managers call `compute_score(data_source=..., solution_str=..., ground_truth=...,
extra_info=..., **reward_kwargs)` once per rollout (the naive manager and the reward loop, which
awaits it when it is `async def`), or, with `reward_manager=batch`,
`compute_score(data_sources=[...], solution_strs=[...], ground_truths=[...], extra_infos=[...])`
once per batch. A float or a dict with a `score` key is expected per rollout; the other keys of a
dict are collected into `reward_extra_info` (logged per key, so every rollout answers the same
keys).

veRL has no "no score". Each function here answers `{"score": float, "reward_error": 0.0 or 1.0}`:
a failed rollout (any status but OK) scores `failure_score` (by default the score the reward's
`on_error` policy gives, 0.0 when it gives none) and is counted with `reward_error = 1.0`, so the
failure rate shows in veRL's logs next to the score. With `on_failure="raise"` a failed rollout
raises `RolloutFailed` instead. A request that fails as a whole (server unreachable after the
retries, deadline passed) always raises.

In code, `client.verl("math")` gives the three functions as methods. For veRL's
`custom_reward_function.path`, point it at this file: its module-level `compute_score`,
`compute_score_async` and `compute_score_batch` use a client made on first use from
`REWARD_CLIENT_URL` (default http://127.0.0.1:8080), `REWARD_CLIENT_REWARD` (the reward; or
`data_source=reward` pairs separated by commas), `REWARD_CLIENT_TOKEN` and
`REWARD_CLIENT_FAILURE_SCORE`.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ._types import RewardClientError, Rollout, ScoredRollout

if TYPE_CHECKING:
    from .client import AsyncRewardClient, RewardClient


class RolloutFailed(RewardClientError):
    """A rollout failed under `on_failure="raise"`; `result` is its `ScoredRollout`."""

    def __init__(self, result: ScoredRollout):
        super().__init__(f"rollout {result.id} failed ({result.status.value}): {result.error}")
        self.result = result


class VerlReward:
    """veRL scoring functions over `client` (sync `RewardClient` or `AsyncRewardClient`).

    - `reward`: the server's reward name, or a mapping from veRL's `data_source` to reward names.
    - `failure_score`: the score of a failed rollout; None (default) keeps what the reward's
      `on_error` policy gave, 0.0 when it gave none.
    - `on_failure`: "score" (default) or "raise".
    - `send_extra_info`: send `data_source` and `extra_info` as the rollout's metadata (True).
    - `group_key`: for a reward that scores whole GRPO groups (`groups = true`), the `extra_info`
      key that names a rollout's prompt, e.g. `"index"` (veRL's example datasets set it, and a
      prompt's samples share it; veRL passes no prompt to score functions, so the server cannot
      group by prompt). Use it with `compute_score_batch`, which sends a batch's groups whole; a
      rollout whose `extra_info` lacks the key raises `KeyError`.
    """

    def __init__(
        self,
        client: "RewardClient | AsyncRewardClient",
        reward: str | Mapping[str, str],
        *,
        failure_score: float | None = None,
        on_failure: str = "score",
        send_extra_info: bool = True,
        timeout: float | None = None,
        group_key: str | None = None,
    ):
        if on_failure not in ("score", "raise"):
            raise ValueError('on_failure must be "score" or "raise"')
        self.client = client
        self.reward = reward
        self.failure_score = failure_score
        self.on_failure = on_failure
        self.send_extra_info = send_extra_info
        self.timeout = timeout
        self.group_key = group_key

    def reward_for(self, data_source: Any) -> str:
        if isinstance(self.reward, str):
            return self.reward
        try:
            return self.reward[str(data_source)]
        except KeyError:
            raise KeyError(f"no reward for data_source {data_source!r} (known: {sorted(self.reward)})") from None

    def rollout(self, data_source: Any, solution_str: str, ground_truth: Any, extra_info: Any) -> Rollout:
        meta = {"data_source": str(data_source), "extra_info": extra_info} if self.send_extra_info else None
        group = None
        if self.group_key is not None:
            if not isinstance(extra_info, Mapping) or self.group_key not in extra_info:
                has = sorted(map(str, extra_info)) if isinstance(extra_info, Mapping) else type(extra_info).__name__
                raise KeyError(f"group_key {self.group_key!r} is not in this rollout's extra_info (it has: {has})")
            group = str(extra_info[self.group_key])
        return Rollout(completion=solution_str, reference=ground_truth, metadata=meta, group=group)

    def answer(self, r: ScoredRollout) -> dict[str, float]:
        if r.ok and r.score is not None:
            return {"score": r.score, "reward_error": 0.0}
        if self.on_failure == "raise":
            raise RolloutFailed(r)
        score = self.failure_score if self.failure_score is not None else (r.score if r.score is not None else 0.0)
        return {"score": float(score), "reward_error": 1.0}

    # -- one rollout ------------------------------------------------------------------------------

    def compute_score(self, data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict[str, float]:
        """One rollout, blocking (batched with concurrent calls: veRL's reward loop runs sync
        functions on a thread pool). Needs a `RewardClient`."""
        from .client import RewardClient

        if not isinstance(self.client, RewardClient):
            raise TypeError("compute_score needs a RewardClient; use compute_score_async with an AsyncRewardClient")
        r = self.client.score_one(
            self.reward_for(data_source), self.rollout(data_source, solution_str, ground_truth, extra_info), timeout=self.timeout
        )
        return self.answer(r)

    async def compute_score_async(self, data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict[str, float]:
        """One rollout, awaited (veRL's reward loop awaits `async def` score functions);
        concurrent calls are batched into one request."""
        from .client import RewardClient

        reward = self.reward_for(data_source)
        rollout = self.rollout(data_source, solution_str, ground_truth, extra_info)
        if isinstance(self.client, RewardClient):
            r = await self.client._run_async(self.client.aio.score_one(reward, rollout, timeout=self.timeout))
        else:
            r = await self.client.score_one(reward, rollout, timeout=self.timeout)
        return self.answer(r)

    # -- a batch ----------------------------------------------------------------------------------

    def compute_score_batch(self, data_sources, solution_strs, ground_truths, extra_infos=None, **kwargs) -> list[dict[str, float]]:
        """A batch (veRL's `batch` reward manager): one request per reward. Needs a `RewardClient`."""
        from .client import RewardClient

        if not isinstance(self.client, RewardClient):
            raise TypeError("compute_score_batch needs a RewardClient")
        n = len(solution_strs)
        extra_infos = list(extra_infos) if extra_infos is not None else [None] * n
        if not (len(data_sources) == len(ground_truths) == len(extra_infos) == n):
            raise ValueError("data_sources, solution_strs, ground_truths and extra_infos must have the same length")
        groups: dict[str, list[int]] = {}
        for i, ds in enumerate(data_sources):
            groups.setdefault(self.reward_for(ds), []).append(i)
        out: list[dict[str, float] | None] = [None] * n
        for reward, idx in groups.items():
            rollouts = [self.rollout(data_sources[i], solution_strs[i], ground_truths[i], extra_infos[i]) for i in idx]
            for i, r in zip(idx, self.client.score(reward, rollouts, timeout=self.timeout)):
                out[i] = self.answer(r)
        return out  # type: ignore[return-value]


# -- the module-level functions, for custom_reward_function.path ---------------------------------

_default: VerlReward | None = None
_default_lock = threading.Lock()


def _parse_reward(text: str) -> str | dict[str, str]:
    if "=" not in text:
        return text
    pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
    return {k.strip(): v.strip() for k, v in pairs}


def default() -> VerlReward:
    """The module's `VerlReward`, made on first use from the `REWARD_CLIENT_*` variables."""
    global _default
    with _default_lock:
        if _default is None:
            from .client import DEFAULT_URL, RewardClient

            reward = os.environ.get("REWARD_CLIENT_REWARD")
            if not reward:
                raise RuntimeError("REWARD_CLIENT_REWARD is not set (the reward to score with, or data_source=reward pairs)")
            failure = os.environ.get("REWARD_CLIENT_FAILURE_SCORE")
            client = RewardClient(os.environ.get("REWARD_CLIENT_URL", DEFAULT_URL), token=os.environ.get("REWARD_CLIENT_TOKEN") or None)
            _default = VerlReward(client, _parse_reward(reward), failure_score=float(failure) if failure else None)
        return _default


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict[str, float]:
    return default().compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs)


async def compute_score_async(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict[str, float]:
    return await default().compute_score_async(data_source, solution_str, ground_truth, extra_info, **kwargs)


def compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos=None, **kwargs) -> list[dict[str, float]]:
    return default().compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos, **kwargs)
