"""TRL: a `GRPOTrainer` reward function over the client.

    from reward_client import RewardClient
    client = RewardClient("http://127.0.0.1:8080")
    trainer = GRPOTrainer(..., reward_funcs=[client.trl("math")])

TRL calls a reward function as `f(prompts=..., completions=..., completion_ids=..., **columns)`:
the dataset's other columns (the reference among them), plus `trainer_state`, `log_extra` and
`log_metric`, come as keyword arguments holding one value per completion. Completions are
strings, or (conversational datasets) lists of messages, the answer last.

The function returns one float per completion, and **None for a rollout that failed** (any
status but OK, whatever score the reward's `on_error` policy gave it): TRL turns None into NaN,
leaves it out of the group's mean and std, and gives a completion that no reward function scored
an advantage of 0. It never scores a failure as 0. When TRL passes `log_metric`, the fraction of
failed rollouts is logged as `<name>/failed`.

A request that fails as a whole (the server unreachable after the retries, the deadline passed, an
unknown reward) raises: the trainer stops instead of training on nothing. Pass
`on_request_error="none"` to answer None for every rollout of the batch instead.

From an `AsyncRewardClient` the function is `async def` (TRL runs async reward functions
concurrently); from a `RewardClient`, a plain function.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ._types import RewardClientError, Rollout, ScoredRollout, text_of

if TYPE_CHECKING:
    from .client import AsyncRewardClient, RewardClient

log = logging.getLogger("reward_client.trl")

TrlRewardFunc = Callable[..., Any]

# Keyword arguments TRL adds that are not dataset columns.
TRL_EXTRA_KWARGS = frozenset({"trainer_state", "log_extra", "log_metric", "environments", "completion_ids"})


def rollouts_of(
    prompts: Sequence[Any],
    completions: Sequence[Any],
    kwargs: dict[str, Any],
    *,
    reference_column: str | None,
    metadata_columns: Sequence[str],
) -> list[Rollout]:
    """The rollouts of one TRL call: a conversational completion's earlier messages (tool turns)
    join the prompt, its last message is the answer."""
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    references = kwargs.get(reference_column) if reference_column else None
    out = []
    for i, (prompt, completion) in enumerate(zip(prompts, completions)):
        if isinstance(completion, str):
            answer, prompt_turns = completion, prompt
        else:
            messages = list(completion)
            answer = text_of(messages[-1].get("content")) if messages else ""
            before = messages[:-1]
            if isinstance(prompt, str):
                prompt_turns = [{"role": "user", "content": prompt}, *before] if before else prompt
            else:
                prompt_turns = [*(prompt or []), *before]
        metadata = {c: kwargs[c][i] for c in metadata_columns if c in kwargs}
        out.append(
            Rollout(
                completion=answer,
                prompt=prompt_turns,
                reference=references[i] if references is not None else None,
                metadata=metadata or None,
            )
        )
    return out


def scores_of(results: Sequence[ScoredRollout]) -> list[float | None]:
    return [r.score if r.ok else None for r in results]


def make_reward_func(
    client: "RewardClient | AsyncRewardClient",
    reward: str,
    *,
    reference_column: str | None = "solution",
    metadata_columns: Sequence[str] = (),
    name: str | None = None,
    timeout: float | None = None,
    on_request_error: str = "raise",
) -> TrlRewardFunc:
    """A TRL reward function scoring with the server's reward `reward`.

    - `reference_column`: the dataset column holding the reference answer (TRL's own accuracy
      reward reads `solution`, the default); a missing column sends no reference.
    - `metadata_columns`: more columns to send as the rollout's metadata.
    - `name`: the function's `__name__`, which TRL uses to name the reward's logs (default: the
      reward's name).
    - `on_request_error`: "raise" (default) or "none" (see the module doc).
    """
    from .client import AsyncRewardClient

    if on_request_error not in ("raise", "none"):
        raise ValueError('on_request_error must be "raise" or "none"')
    label = name or reward

    def prepare(prompts, completions, kwargs):
        columns = {k: v for k, v in kwargs.items() if k not in TRL_EXTRA_KWARGS}
        return rollouts_of(prompts, completions, columns, reference_column=reference_column, metadata_columns=metadata_columns)

    def finish(results: Sequence[ScoredRollout] | None, n: int, error: Exception | None, kwargs) -> list[float | None]:
        if error is not None:
            if on_request_error == "raise":
                raise error
            log.warning("reward %r: the request failed, answering None for %d rollouts: %s", reward, n, error)
            scores: list[float | None] = [None] * n
        else:
            scores = scores_of(results or [])
            for r in results or []:
                if not r.ok:
                    log.debug("reward %r: rollout %s failed (%s): %s", reward, r.id, r.status.value, r.error)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and n:
            log_metric(f"{label}/failed", sum(s is None for s in scores) / n)
        return scores

    if isinstance(client, AsyncRewardClient):

        async def reward_func(prompts, completions, **kwargs) -> list[float | None]:
            rollouts = prepare(prompts, completions, kwargs)
            try:
                results, error = await client.score(reward, rollouts, timeout=timeout), None
            except RewardClientError as e:
                results, error = None, e
            return finish(results, len(rollouts), error, kwargs)

    else:

        def reward_func(prompts, completions, **kwargs) -> list[float | None]:  # type: ignore[misc]
            rollouts = prepare(prompts, completions, kwargs)
            try:
                results, error = client.score(reward, rollouts, timeout=timeout), None
            except RewardClientError as e:
                results, error = None, e
            return finish(results, len(rollouts), error, kwargs)

    reward_func.__name__ = label
    reward_func.__qualname__ = label
    return reward_func
