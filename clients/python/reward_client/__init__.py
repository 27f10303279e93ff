"""A client of reward-server, narrowed to what a trainer needs: score rollouts, fast and safely.

Brief overview:

- `RewardClient` (blocking, thread-safe) and `AsyncRewardClient` (asyncio) score rollouts over
  HTTP (`http://`, the JSON API) or gRPC (`grpc://`): `score` sends a list as one request,
  `score_one` / `score_many` go through a batcher that joins concurrent calls into requests.
- `Rollout` is what goes in; `ScoredRollout` what comes out (score, status, error, metrics,
  provenance, cached).
- `RetryPolicy`: exponential backoff with full jitter, honouring `Retry-After` and
  `grpc-retry-pushback-ms`, only for failures worth retrying, never past the deadline.
- Errors: `RequestFailed`, `ServerUnreachable`, `DeadlineExceeded` (all `RewardClientError`). A
  rollout that fails is not an error: it is a result whose status is not OK.
- Adapters: `client.trl(reward)` (TRL), `client.verl(reward)` / `reward_client.verl` (veRL),
  `reward_client/openrlhf.py` (OpenRLHF's `--remote_rm_url`).
"""

from ._retry import RetryPolicy
from ._types import (
    DeadlineExceeded,
    GroupRewardSplit,
    Provenance,
    RequestFailed,
    RewardClientError,
    Rollout,
    ScoredRollout,
    ServerUnreachable,
    Status,
)
from .client import AsyncRewardClient, RewardClient

__all__ = [
    "AsyncRewardClient",
    "DeadlineExceeded",
    "GroupRewardSplit",
    "Provenance",
    "RequestFailed",
    "RetryPolicy",
    "RewardClient",
    "RewardClientError",
    "Rollout",
    "ScoredRollout",
    "ServerUnreachable",
    "Status",
]
