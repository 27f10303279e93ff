"""OpenRLHF: this file is a `reward_func` for `--remote_rm_url`.

    export REWARD_CLIENT_URL=http://reward-server:8080 REWARD_CLIENT_REWARD=math
    python3 -m openrlhf.cli.train_ppo_ray ... --label_key answer \\
        --remote_rm_url "$(python3 -c 'import reward_client.openrlhf as m; print(m.__file__)')"

OpenRLHF loads the file and calls `reward_func(queries, prompts, labels)`: `queries` are the
prompts followed by the responses, `prompts` the prompts alone, `labels` the references. Recent
versions call it once per rollout, from many threads at once; older ones once per micro-batch.
Either way every rollout goes through one shared `RewardClient`'s batcher, so concurrent calls
become a few batched requests on one connection pool, not one request (and connection) per rollout
as OpenRLHF's own HTTP client makes.

Returns `{"rewards", "scores", "extra_logs": {"reward_error"}}`, one value per query (torch
tensors when torch is importable, as it is inside OpenRLHF; lists otherwise). OpenRLHF has no
"no score": a failed rollout (any status but OK) scores `REWARD_CLIENT_FAILURE_SCORE` if set,
else what the reward's `on_error` policy gave (0.0 when it gave none), as the server's own
`/v1/rewards/{name}/get_reward` door does, and shows as 1 in `extra_logs["reward_error"]`. A
request that fails as a whole raises (OpenRLHF logs it and leaves the sample without a reward).

Settings, read on first call: `REWARD_CLIENT_URL` (default http://127.0.0.1:8080; `grpc://` works
too), `REWARD_CLIENT_REWARD` (required), `REWARD_CLIENT_TOKEN`, `REWARD_CLIENT_FAILURE_SCORE`,
`REWARD_CLIENT_TIMEOUT` (seconds, default 60), `REWARD_CLIENT_MAX_BATCH` (rollouts per request,
default 256) and `REWARD_CLIENT_MAX_WAIT_MS` (how long the first rollout of a batch waits for
others, default 5).
"""

from __future__ import annotations

import os
import threading
from typing import Any, Sequence

from reward_client._types import Rollout, ScoredRollout
from reward_client.client import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_WAIT, DEFAULT_URL, RewardClient

_client: RewardClient | None = None
_lock = threading.Lock()


def client() -> RewardClient:
    """The shared client, made on first use from the `REWARD_CLIENT_*` variables."""
    global _client
    with _lock:
        if _client is None:
            _client = RewardClient(
                os.environ.get("REWARD_CLIENT_URL", DEFAULT_URL),
                token=os.environ.get("REWARD_CLIENT_TOKEN") or None,
                timeout=float(os.environ.get("REWARD_CLIENT_TIMEOUT", "60")),
                max_batch_size=int(os.environ.get("REWARD_CLIENT_MAX_BATCH", str(DEFAULT_MAX_BATCH_SIZE))),
                max_wait=float(os.environ.get("REWARD_CLIENT_MAX_WAIT_MS", str(DEFAULT_MAX_WAIT * 1000))) / 1000,
            )
        return _client


def rollouts_of(queries: Sequence[str], prompts: Sequence[str] | None, labels: Sequence[Any] | None) -> list[Rollout]:
    """A query's completion is the text after its prompt (the whole query when it does not start
    with the prompt), as the server's OpenRLHF door reads it."""
    n = len(queries)
    for field, values in (("prompts", prompts), ("labels", labels)):
        if values is not None and len(values) != n:
            raise ValueError(f"`{field}` has {len(values)} items but `queries` has {n}")
    out = []
    for i, query in enumerate(queries):
        prompt = prompts[i] if prompts is not None else None
        completion = query[len(prompt) :] if prompt is not None and query.startswith(prompt) else query
        out.append(Rollout(completion=completion, prompt=prompt, reference=labels[i] if labels is not None else None))
    return out


def answer(results: Sequence[ScoredRollout], failure_score: float | None) -> dict[str, Any]:
    rewards, errors = [], []
    for r in results:
        if r.ok and r.score is not None:
            rewards.append(r.score)
            errors.append(0.0)
        else:
            rewards.append(failure_score if failure_score is not None else (r.score if r.score is not None else 0.0))
            errors.append(1.0)
    try:
        import torch
    except ImportError:
        return {"rewards": rewards, "scores": list(rewards), "extra_logs": {"reward_error": errors}}
    t = torch.tensor(rewards, dtype=torch.float32)
    return {"rewards": t, "scores": t.clone(), "extra_logs": {"reward_error": torch.tensor(errors, dtype=torch.float32)}}


def reward_func(queries, prompts, labels, **kwargs) -> dict[str, Any]:
    reward = os.environ.get("REWARD_CLIENT_REWARD")
    if not reward:
        raise RuntimeError("REWARD_CLIENT_REWARD is not set (the reward-server reward to score with)")
    failure = os.environ.get("REWARD_CLIENT_FAILURE_SCORE")
    rollouts = rollouts_of(list(queries), prompts, labels)
    # A group reward's batch goes whole (the batcher could split its groups); others are batched
    # with the other workers' calls.
    c = client()
    results = c.score(reward, rollouts) if c.scores_groups(reward) else c.score_many(reward, rollouts)
    return answer(results, float(failure) if failure else None)
