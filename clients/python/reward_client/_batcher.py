"""Coalesces single-rollout calls into batched requests."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Sequence

from ._types import DeadlineExceeded, Rollout, ScoredRollout

Send = Callable[[str, Sequence[Rollout], float], Awaitable[list[ScoredRollout]]]


@dataclass
class _Pending:
    rollouts: list[Rollout] = field(default_factory=list)
    futures: list[asyncio.Future] = field(default_factory=list)
    deadline: float = 0.0
    timer: asyncio.TimerHandle | None = None


class Batcher:
    """Per reward, collects the rollouts submitted within `max_wait` seconds of the first one (or
    until `max_batch_size` are waiting) and sends them as one request.

    The request's deadline is the latest of its callers' deadlines; each caller still waits only
    until its own deadline. A request that fails fails every caller in it with the same error.
    Runs on one event loop (the client's).
    """

    def __init__(self, send: Send, *, max_batch_size: int, max_wait: float):
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if max_wait < 0:
            raise ValueError("max_wait must be at least 0")
        self._send = send
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait
        self._pending: dict[str, _Pending] = {}
        self._tasks: set[asyncio.Task] = set()

    async def submit(self, reward: str, rollout: Rollout, deadline: float) -> ScoredRollout:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        pending = self._pending.get(reward)
        if pending is None:
            pending = self._pending[reward] = _Pending()
            pending.timer = loop.call_later(self.max_wait, self._flush, reward)
        pending.rollouts.append(rollout)
        pending.futures.append(future)
        pending.deadline = max(pending.deadline, deadline)
        if len(pending.rollouts) >= self.max_batch_size:
            self._flush(reward)
        # Each caller has its own future, so its deadline just fails that future (cheaper than
        # wait_for + shield, which make a task per call).
        def expire() -> None:
            if not future.done():
                future.set_exception(DeadlineExceeded(f"no answer within the deadline (the batch of reward {reward!r} is still in flight)"))

        timer = loop.call_later(max(deadline - time.monotonic(), 0), expire)
        try:
            return await future
        finally:
            timer.cancel()

    def _flush(self, reward: str) -> None:
        pending = self._pending.pop(reward, None)
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._run(reward, pending))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, reward: str, pending: _Pending) -> None:
        try:
            results = await self._send(reward, pending.rollouts, pending.deadline)
        except BaseException as e:  # noqa: BLE001 - handed to every caller
            for f in pending.futures:
                if not f.done():
                    f.set_exception(e)
            if isinstance(e, asyncio.CancelledError):
                raise
            return
        for f, r in zip(pending.futures, results):
            if not f.done():
                f.set_result(r)

    async def aclose(self) -> None:
        for reward in list(self._pending):
            self._flush(reward)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
