"""The two transports: one attempt of one request each; retries and deadlines live in the client."""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import grpc
import httpx

from ._proto import reward_pb2, reward_pb2_grpc
from ._retry import RETRYABLE_HTTP, parse_pushback_ms, parse_retry_after
from ._types import (
    DeadlineExceeded,
    Provenance,
    RequestFailed,
    Rollout,
    ScoredRollout,
    ServerUnreachable,
    Status,
    checked_metadata,
    finite_or_none,
    messages_of,
    to_json,
)

# How long past the server-side deadline the client waits for the server's own 504 before giving
# up locally: the server answers at its deadline, so this only covers the network.
DEADLINE_GRACE_S = 0.5


def _status(name: str) -> Status:
    try:
        return Status(name)
    except ValueError:
        return Status.STATUS_UNSPECIFIED


def _root_cause(e: BaseException) -> str:
    # httpx says "All connection attempts failed"; the OS error underneath says why.
    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, OSError) and (cause.errno or cause.strerror):
            return os.strerror(cause.errno).lower() if cause.errno else str(cause.strerror)
        cause = cause.__cause__ or cause.__context__
    return str(e)


class HttpTransport:
    """`POST /v1/score` over one httpx connection pool (keep-alive; at most `max_connections`)."""

    def __init__(self, base_url: str, *, token: str | None, max_connections: int, verify: Any = True):
        headers = {"content-type": "application/json", "user-agent": "reward-client/0.1"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self.url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.url,
            headers=headers,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            timeout=None,
            verify=verify,
        )

    @staticmethod
    def record(r: Rollout, i: int) -> dict[str, Any]:
        # The Nova record shape: the conversation with the answer last; metadata as extra keys.
        record = {**checked_metadata(r), "id": r.id or str(i), "messages": messages_of(r), "reference_answer": r.reference}
        if r.group is not None:
            record["group"] = r.group
        return record

    async def score(self, reward: str, rollouts: Sequence[Rollout], timeout_s: float) -> list[ScoredRollout]:
        body = to_json({"reward": reward, "rollouts": [self.record(r, i) for i, r in enumerate(rollouts)]}).encode()
        try:
            response = await self._client.post(
                "/v1/score",
                content=body,
                headers={"x-timeout-ms": str(max(1, int(timeout_s * 1000)))},
                timeout=httpx.Timeout(timeout_s + DEADLINE_GRACE_S),
            )
        except httpx.ConnectError as e:
            raise ServerUnreachable(f"reward server {self.url}: cannot connect: {_root_cause(e)}") from e
        except httpx.TimeoutException as e:
            raise DeadlineExceeded(f"reward server {self.url}: no answer within the deadline ({timeout_s:.3f}s)") from e
        except httpx.TransportError as e:
            raise ServerUnreachable(f"reward server {self.url}: {type(e).__name__}: {e}") from e
        if response.status_code == 200:
            results = response.json()["results"]
            return [self.result(r) for r in results]
        try:
            payload = response.json()
            message, kind = str(payload.get("error", "")), payload.get("kind")
        except (json.JSONDecodeError, AttributeError):
            message, kind = response.text[:500], None
        text = f"reward server {self.url}: HTTP {response.status_code}: {message or response.reason_phrase}"
        if response.status_code == 504:
            raise DeadlineExceeded(text)
        raise RequestFailed(
            text,
            code=response.status_code,
            kind=kind,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            retryable=response.status_code in RETRYABLE_HTTP,
        )

    async def group_rewards(self, timeout_s: float) -> set[str]:
        """The names of the loaded rewards that score whole groups (`GET /v1/rewards`)."""
        try:
            response = await self._client.get("/v1/rewards", timeout=httpx.Timeout(timeout_s))
        except httpx.TransportError as e:
            raise ServerUnreachable(f"reward server {self.url}: {type(e).__name__}: {e}") from e
        if response.status_code != 200:
            raise RequestFailed(f"reward server {self.url}: GET /v1/rewards: HTTP {response.status_code}", code=response.status_code)
        return {r["name"] for r in response.json().get("rewards", []) if r.get("groups")}

    @staticmethod
    def result(r: dict[str, Any]) -> ScoredRollout:
        p = r.get("provenance")
        return ScoredRollout(
            id=str(r.get("id", "")),
            score=finite_or_none(r.get("score")),
            status=_status(r.get("status", "")),
            error=r.get("error"),
            metrics={str(k): float(v) for k, v in (r.get("metrics") or {}).items()},
            provenance=Provenance(p.get("reward", ""), p.get("plugin_sha256", ""), p.get("config_hash", ""), tuple(p.get("judge_models", ()))) if p else None,
            cached=bool(r.get("cached", False)),
            reason=r.get("reason"),
            instructions=int(r.get("instructions", 0)),
            latency_us=int(r.get("latency_us", 0)),
        )

    async def aclose(self) -> None:
        await self._client.aclose()


class GrpcTransport:
    """`reward.v1.RewardService/Score` over one gRPC channel (one HTTP/2 connection, multiplexed)."""

    def __init__(self, target: str, *, token: str | None, secure: bool, credentials: grpc.ChannelCredentials | None = None):
        self.url = target
        options = [("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20)]
        if secure:
            self._channel = grpc.aio.secure_channel(target, credentials or grpc.ssl_channel_credentials(), options=options)
        else:
            self._channel = grpc.aio.insecure_channel(target, options=options)
        self._stub = reward_pb2_grpc.RewardServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()

    @staticmethod
    def message(r: Rollout, i: int) -> reward_pb2.Rollout:
        meta = checked_metadata(r)
        return reward_pb2.Rollout(
            id=r.id or str(i),
            messages=[reward_pb2.Message(role=m["role"], content=m["content"]) for m in messages_of(r)],
            reference_json="" if r.reference is None else to_json(r.reference),
            metadata_json=to_json(meta) if meta else "",
            group=r.group or "",
        )

    async def score(self, reward: str, rollouts: Sequence[Rollout], timeout_s: float) -> list[ScoredRollout]:
        request = reward_pb2.ScoreRequest(reward=reward, rollouts=[self.message(r, i) for i, r in enumerate(rollouts)])
        try:
            response = await self._stub.Score(request, timeout=timeout_s, metadata=self._metadata)
        except grpc.aio.AioRpcError as e:
            raise self.error(e) from None
        return [self.result(r) for r in response.results]

    async def group_rewards(self, timeout_s: float) -> set[str]:
        """The names of the loaded rewards that score whole groups (`ListRewards`)."""
        try:
            response = await self._stub.ListRewards(reward_pb2.ListRewardsRequest(), timeout=timeout_s, metadata=self._metadata)
        except grpc.aio.AioRpcError as e:
            raise self.error(e) from None
        return {r.name for r in response.rewards if r.groups}

    def error(self, e: grpc.aio.AioRpcError) -> Exception:
        code = e.code()
        text = f"reward server {self.url}: gRPC {code.name}: {e.details()}"
        # grpc.aio sometimes reports its own deadline firing as CANCELLED "Timeout expired".
        if code == grpc.StatusCode.DEADLINE_EXCEEDED or (code == grpc.StatusCode.CANCELLED and "timeout" in (e.details() or "").lower()):
            return DeadlineExceeded(text)
        trailers = dict((k, v) for k, v in (e.trailing_metadata() or ()) if isinstance(v, str))
        pushback = parse_pushback_ms(trailers.get("grpc-retry-pushback-ms"))
        if code == grpc.StatusCode.UNAVAILABLE and "failed to connect" in (e.details() or "").lower():
            return ServerUnreachable(text)
        retryable = code == grpc.StatusCode.UNAVAILABLE or (code == grpc.StatusCode.RESOURCE_EXHAUSTED and pushback is not None)
        return RequestFailed(text, code=code.name, retry_after=pushback, retryable=retryable)

    @staticmethod
    def result(r: reward_pb2.ScoredRollout) -> ScoredRollout:
        p = r.provenance if r.HasField("provenance") else None
        return ScoredRollout(
            id=r.id,
            score=finite_or_none(r.score) if r.HasField("score") else None,
            status=_status(reward_pb2.Status.Name(r.status)),
            error=r.error or None,
            metrics={m.name: m.value for m in r.metrics},
            provenance=Provenance(p.reward, p.plugin_sha256, p.config_hash, tuple(p.judge_models)) if p else None,
            cached=r.cached,
            reason=r.reason or None,
            instructions=r.instructions,
            latency_us=r.latency_us,
        )

    async def aclose(self) -> None:
        await self._channel.close()
