"""`AsyncRewardClient` and `RewardClient`: one connection pool (HTTP) or channel (gRPC) per client,
per-call deadlines, retries, and batching of single-rollout calls."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Mapping, Sequence, TypeVar
from urllib.parse import urlsplit

from ._batcher import Batcher
from ._retry import RetryPolicy
from ._transport import GrpcTransport, HttpTransport
from ._types import DeadlineExceeded, GroupRewardSplit, RequestFailed, Rollout, ScoredRollout, ServerUnreachable, as_rollout

if TYPE_CHECKING:
    from .trl import TrlRewardFunc
    from .verl import VerlReward

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_BATCH_SIZE = 256
DEFAULT_MAX_WAIT = 0.005
DEFAULT_MAX_REQUEST_ROLLOUTS = 4096
DEFAULT_MAX_CONNECTIONS = 16

RolloutLike = Rollout | Mapping[str, Any] | str


class AsyncRewardClient:
    """An asyncio client of one reward server.

    `url` picks the transport: `http://` or `https://` is the JSON API (`POST /v1/score`),
    `grpc://host:port` the gRPC API, `grpcs://host:port` gRPC over TLS.

    - `token`: sent as `authorization: Bearer TOKEN`.
    - `timeout`: each call's deadline in seconds, unless the call gives its own; it is sent to the
      server (`x-timeout-ms`, the gRPC deadline) and covers the retries too. Defaults to 60 s, the
      server's own default cap.
    - `retry`: see `RetryPolicy` (5 attempts, full-jitter backoff from 0.1 s to 5 s).
    - `max_batch_size`, `max_wait`: `score_one` and `score_many` calls made within `max_wait`
      seconds (5 ms) of each other for the same reward go out as one request of at most
      `max_batch_size` (256) rollouts.
    - `max_request_rollouts`: `score` splits larger lists into requests of this size (4,096, the
      server's default `--max-rollouts-per-request`), sent concurrently.
    - `max_connections`: the HTTP pool's size (16); gRPC uses one channel.

    The client may be made outside any event loop; it belongs to the loop it is first used on.
    Close it with `aclose()` or `async with`.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_wait: float = DEFAULT_MAX_WAIT,
        max_request_rollouts: int = DEFAULT_MAX_REQUEST_ROLLOUTS,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_request_rollouts < max_batch_size:
            raise ValueError("max_batch_size cannot exceed max_request_rollouts")
        scheme = urlsplit(url).scheme
        if scheme in ("http", "https"):
            self._make_transport: Callable[[], HttpTransport | GrpcTransport] = lambda: HttpTransport(
                url, token=token, max_connections=max_connections
            )
        elif scheme in ("grpc", "grpcs"):
            target = url.split("://", 1)[1].rstrip("/")
            self._make_transport = lambda: GrpcTransport(target, token=token, secure=scheme == "grpcs")
        else:
            raise ValueError(f"url {url!r}: the scheme must be http, https, grpc or grpcs")
        # Made on first use, inside the event loop that will run it (a client may be built at
        # import time and used from a trainer's own loop).
        self._transport: HttpTransport | GrpcTransport | None = None
        self.url = url
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.max_request_rollouts = max_request_rollouts
        self._batcher = Batcher(self._request, max_batch_size=max_batch_size, max_wait=max_wait)
        self.requests_sent = 0
        # The server's rewards that score whole groups, once read (see `_refuse_split_groups`).
        self._group_rewards: set[str] | None = None

    # -- calls ------------------------------------------------------------------------------------

    async def score(self, reward: str, rollouts: Sequence[RolloutLike], *, timeout: float | None = None) -> list[ScoredRollout]:
        """Scores `rollouts` in one request (several if there are more than
        `max_request_rollouts`), answering one result per rollout, in order."""
        items = [as_rollout(r) for r in rollouts]
        if not items:
            return []
        deadline = self._deadline(timeout)
        n = self.max_request_rollouts
        chunks = [items[i : i + n] for i in range(0, len(items), n)]
        answers = await asyncio.gather(*(self._request(reward, c, deadline) for c in chunks))
        return [r for chunk in answers for r in chunk]

    async def score_one(self, reward: str, rollout: RolloutLike, *, timeout: float | None = None) -> ScoredRollout:
        """Scores one rollout, batched with other `score_one` / `score_many` calls for `reward`.
        Refused (`GroupRewardSplit`) for a reward that scores whole groups: use `score`."""
        deadline = self._deadline(timeout)
        await self._refuse_split_groups(reward, "score_one")
        return await self._batcher.submit(reward, as_rollout(rollout), deadline)

    async def score_many(self, reward: str, rollouts: Sequence[RolloutLike], *, timeout: float | None = None) -> list[ScoredRollout]:
        """Scores `rollouts` through the batcher: with concurrent callers' rollouts, in requests of
        at most `max_batch_size`. Refused (`GroupRewardSplit`) for a reward that scores whole
        groups: use `score`."""
        deadline = self._deadline(timeout)
        await self._refuse_split_groups(reward, "score_many")
        return list(await asyncio.gather(*(self._batcher.submit(reward, as_rollout(r), deadline) for r in rollouts)))

    async def scores_groups(self, reward: str) -> bool | None:
        """Whether the server's reward `reward` scores whole GRPO groups (`groups = true`), from
        the server's list of rewards, read once per client; None when the list could not be read
        (it is read again next time)."""
        if self._group_rewards is None:
            try:
                if self._transport is None:
                    self._transport = self._make_transport()
                self._group_rewards = await self._transport.group_rewards(min(self.timeout, 10.0))
            except (RequestFailed, ServerUnreachable, DeadlineExceeded):
                return None
        return reward in self._group_rewards

    async def _refuse_split_groups(self, reward: str, call: str) -> None:
        """The batcher cuts requests by time and size, not by group, so a group reward's group
        could be split across requests and each part scored as a group of its own: a wrong score
        that looks right. Raises `GroupRewardSplit` for such a reward (when the server's list
        cannot be read, the call goes ahead unchecked)."""
        if await self.scores_groups(reward):
            raise GroupRewardSplit(
                f"reward `{reward}` scores whole GRPO groups: {call} batches rollouts by time, not by group, and would "
                "score parts of a group as groups of their own; send each group in one `score` call (veRL: compute_score_batch)"
            )

    # -- adapters ---------------------------------------------------------------------------------

    def trl(self, reward: str, **options: Any) -> "TrlRewardFunc":
        """A TRL `GRPOTrainer` reward function (async); see `reward_client.trl`."""
        from .trl import make_reward_func

        return make_reward_func(self, reward, **options)

    def verl(self, reward: str | Mapping[str, str], **options: Any) -> "VerlReward":
        """veRL `compute_score` functions; see `reward_client.verl`."""
        from .verl import VerlReward

        return VerlReward(self, reward, **options)

    # -- plumbing ---------------------------------------------------------------------------------

    def _deadline(self, timeout: float | None) -> float:
        t = self.timeout if timeout is None else timeout
        if t <= 0:
            raise ValueError("timeout must be positive")
        return time.monotonic() + t

    async def _request(self, reward: str, rollouts: Sequence[Rollout], deadline: float) -> list[ScoredRollout]:
        """One request, retried per the policy until the deadline."""
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceeded(f"reward server {self.url}: the deadline passed after {attempt} attempts")
            attempt += 1
            try:
                self.requests_sent += 1
                if self._transport is None:
                    self._transport = self._make_transport()
                results = await self._transport.score(reward, rollouts, remaining)
            except (RequestFailed, ServerUnreachable) as e:
                e.attempts = attempt
                retryable = isinstance(e, ServerUnreachable) or e.retryable
                if not retryable:
                    raise
                if attempt >= self.retry.max_attempts:
                    e.args = (f"{e.args[0]} (gave up after {attempt} attempts)",)
                    raise
                wait = self.retry.backoff(attempt - 1, getattr(e, "retry_after", None))
                if time.monotonic() + wait >= deadline:
                    e.args = (f"{e.args[0]} (after {attempt} attempts; no time left before the deadline to retry)",)
                    raise
                await asyncio.sleep(wait)
                continue
            if len(results) != len(rollouts):
                raise RequestFailed(
                    f"reward server {self.url}: {len(results)} results for {len(rollouts)} rollouts", code="bad_answer"
                )
            return results

    async def aclose(self) -> None:
        await self._batcher.aclose()
        if self._transport is not None:
            await self._transport.aclose()
            self._transport = None

    async def __aenter__(self) -> "AsyncRewardClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class RewardClient:
    """The blocking client: the same calls as `AsyncRewardClient`, run on a private event loop in
    a background thread, so calls from many threads share one connection pool (or channel) and
    their `score_one` / `score_many` rollouts are batched together. Thread-safe.

    Takes the same arguments as `AsyncRewardClient`. Close it with `close()` or `with`.
    """

    def __init__(self, url: str = DEFAULT_URL, **options: Any):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="reward-client", daemon=True)
        self._thread.start()
        self._closed = False

        async def make() -> AsyncRewardClient:
            return AsyncRewardClient(url, **options)

        self.aio: AsyncRewardClient = self._run(make())

    @property
    def url(self) -> str:
        return self.aio.url

    @property
    def requests_sent(self) -> int:
        """Requests sent so far (each attempt counts)."""
        return self.aio.requests_sent

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("the client is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs `coro` on the client's loop and awaits it from another loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def score(self, reward: str, rollouts: Sequence[RolloutLike], *, timeout: float | None = None) -> list[ScoredRollout]:
        return self._run(self.aio.score(reward, rollouts, timeout=timeout))

    def score_one(self, reward: str, rollout: RolloutLike, *, timeout: float | None = None) -> ScoredRollout:
        return self._run(self.aio.score_one(reward, rollout, timeout=timeout))

    def score_many(self, reward: str, rollouts: Sequence[RolloutLike], *, timeout: float | None = None) -> list[ScoredRollout]:
        return self._run(self.aio.score_many(reward, rollouts, timeout=timeout))

    def scores_groups(self, reward: str) -> bool | None:
        return self._run(self.aio.scores_groups(reward))

    score.__doc__ = AsyncRewardClient.score.__doc__
    score_one.__doc__ = AsyncRewardClient.score_one.__doc__
    score_many.__doc__ = AsyncRewardClient.score_many.__doc__
    scores_groups.__doc__ = AsyncRewardClient.scores_groups.__doc__

    def trl(self, reward: str, **options: Any) -> "TrlRewardFunc":
        """A TRL `GRPOTrainer` reward function (sync); see `reward_client.trl`."""
        from .trl import make_reward_func

        return make_reward_func(self, reward, **options)

    def verl(self, reward: str | Mapping[str, str], **options: Any) -> "VerlReward":
        """veRL `compute_score` functions; see `reward_client.verl`."""
        from .verl import VerlReward

        return VerlReward(self, reward, **options)

    def close(self) -> None:
        if self._closed:
            return
        self._run(self.aio.aclose())
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> "RewardClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
