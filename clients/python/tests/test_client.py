"""The client against the real server: results, batching, deadlines, server down, overload, drain."""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import pytest

from reward_client import (
    AsyncRewardClient,
    DeadlineExceeded,
    RequestFailed,
    RetryPolicy,
    RewardClient,
    Rollout,
    ServerUnreachable,
    Status,
)

NO_RETRY = RetryPolicy(max_attempts=1)


def wait_inflight(server, n: int, timeout: float = 10.0) -> None:
    """Waits until the server holds `n` rollouts in flight (of rewards that ask no judge)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(line == f'reward_inflight_rollouts{{budget="cpu"}} {n}' for line in server.metrics().splitlines()):
            return
        time.sleep(0.01)
    raise AssertionError(f"never {n} rollouts in flight")


def test_ok_and_failed_rollouts_are_typed_results(url):
    with RewardClient(url) as client:
        ok, panicked, invalid = client.score("guest", ["hello", "panic", Rollout(completion="invalid", id="mine")])
        assert (ok.status, ok.score, ok.metrics["length"], ok.error) == (Status.OK, 5.0, 5.0, None)
        assert ok.provenance.reward == "guest" and len(ok.provenance.plugin_sha256) == 64 and ok.provenance.config_hash
        assert ok.instructions > 0 and ok.ok
        # `zero` policy: the failure scores 0.0, but its status says it failed.
        assert (panicked.status, panicked.score, panicked.ok) == (Status.PLUGIN_ERROR, 0.0, False)
        assert "panic" in panicked.error
        assert (invalid.id, invalid.status) == ("mine", Status.INVALID_INPUT)
        # `abstain`: no score at all.
        (abstained,) = client.score("guest_abstain", ["panic"])
        assert (abstained.status, abstained.score) == (Status.PLUGIN_ERROR, None)
        # The same rollout again is a cache hit.
        assert client.score("guest", ["hello"])[0].cached


def test_prompt_reference_and_metadata_reach_the_plugin(builtin):
    answer = "<think>135/120 = 1.125</think><answer>12.5%</answer>"
    for url in (builtin.http, builtin.grpc_url):
        with RewardClient(url) as client:
            right, wrong, chat = client.score(
                "numeric_answer",
                [
                    Rollout(completion=answer, prompt="Growth in percent?", reference="12.5", metadata={"task": "finqa"}),
                    Rollout(completion=answer, prompt="Growth in percent?", reference="99"),
                    {"completion": answer, "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "q"}], "reference": 12.5},
                ],
            )
            assert (right.status, right.score) == (Status.OK, 1.0), right
            assert wrong.status is Status.OK and wrong.score < 1.0
            assert chat.score == 1.0


def test_concurrent_single_calls_become_one_request(server):
    before = server.requests("guest")
    with RewardClient(server.http, max_wait=0.05) as client:
        threads, results = [], [None] * 20

        def call(i):
            results[i] = client.score_one("guest", f"rollout-{i}-" + "x" * i)

        for i in range(20):
            threads.append(threading.Thread(target=call, args=(i,)))
            threads[-1].start()
        for t in threads:
            t.join()
    assert [r.score for r in results] == [float(len(f"rollout-{i}-") + i) for i in range(20)]
    assert server.requests("guest") - before == 1


def test_async_batcher_honours_max_batch_size(server):
    async def main():
        before = server.requests("guest", "grpc")
        async with AsyncRewardClient(server.grpc_url, max_batch_size=8, max_wait=0.05) as client:
            results = await asyncio.gather(*(client.score_one("guest", "y" * i) for i in range(20)))
        assert [r.score for r in results] == [float(i) for i in range(20)]
        assert server.requests("guest", "grpc") - before == 3  # 8 + 8 + 4

    asyncio.run(main())


def test_deadline_is_sent_and_enforced(url):
    with RewardClient(url) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            client.score("slow", [f"work {400000 + i}" for i in range(16)], timeout=0.3)
        assert time.monotonic() - started < 1.5, "answered at the deadline, not after the work"
        # A batched single call waits only until its own deadline too.
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            client.score_one("slow", "work 3000000", timeout=0.2)
        assert time.monotonic() - started < 1.5


def test_server_down_is_a_clear_error_after_the_retries():
    for url in ("http://127.0.0.1:9", "grpc://127.0.0.1:9"):
        with RewardClient(url, retry=RetryPolicy(max_attempts=3, initial_backoff=0.05)) as client:
            with pytest.raises(ServerUnreachable) as e:
                client.score("guest", ["x"])
            assert e.value.attempts == 3
            assert "127.0.0.1:9" in str(e.value) and "gave up after 3 attempts" in str(e.value)
            assert "connection refused" in str(e.value).lower()


def test_client_errors_are_not_retried(server):
    before = server.requests("(unknown)")
    with RewardClient(server.http) as client:
        with pytest.raises(RequestFailed) as e:
            client.score("no_such_reward", ["x"])
    assert (e.value.code, e.value.kind, e.value.attempts) == (404, "unknown_reward", 1)
    assert server.requests("(unknown)") - before == 1
    with RewardClient(server.grpc_url) as client:
        with pytest.raises(RequestFailed) as e:
            client.score("no_such_reward", ["x"])
    assert (e.value.code, e.value.attempts) == ("NOT_FOUND", 1)


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_overload_is_refused_with_pushback_and_retried(fresh, transport):
    server = fresh("--workers", "1", "--max-inflight-rollouts", "4", "--max-rollouts-per-request", "4")
    url = server.http if transport == "http" else server.grpc_url
    slow = [f"work {150000 + i}" for i in range(4)]
    with RewardClient(url) as client:
        holder = threading.Thread(target=client.score, args=("slow", slow))
        holder.start()
        wait_inflight(server, 4)
        # Refused at once, with the server's pushback (Retry-After: 1 / grpc-retry-pushback-ms: 1000).
        with RewardClient(url, retry=NO_RETRY) as once:
            started = time.monotonic()
            with pytest.raises(RequestFailed) as e:
                once.score("guest", ["a"])
            assert time.monotonic() - started < 0.5
        assert e.value.code == (429 if transport == "http" else "RESOURCE_EXHAUSTED")
        assert e.value.retry_after == 1.0 and e.value.retryable
        # With retries: waits at least the pushback, then gets through once the capacity is free.
        started = time.monotonic()
        (r,) = client.score("guest", ["abc"], timeout=30)
        assert r.score == 3.0 and time.monotonic() - started >= 1.0
        holder.join()
        # A retry that could not start before the deadline is not made.
        # (New rollouts: the first ones are answered from the score cache now.)
        holder = threading.Thread(target=client.score, args=("slow", [f"work {160000 + i}" for i in range(4)]))
        holder.start()
        wait_inflight(server, 4)
        started = time.monotonic()
        with pytest.raises(RequestFailed) as e:
            client.score("guest", ["a"], timeout=0.5)
        assert "no time left before the deadline" in str(e.value) and time.monotonic() - started < 0.5
        holder.join()
    # Refused: once without retries, at least once before the retry got through, once at the end.
    (refused,) = [int(l.split()[-1]) for l in server.metrics().splitlines() if l.startswith('reward_rejected_total{reason="overloaded"}')]
    assert refused >= 3


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_draining_answers_in_flight_work_and_refuses_new(fresh, transport):
    server = fresh("--workers", "1")
    url = server.http if transport == "http" else server.grpc_url
    with RewardClient(url, retry=RetryPolicy(max_attempts=2, initial_backoff=0.05)) as client:
        answer = {}
        holder = threading.Thread(target=lambda: answer.setdefault("r", client.score("slow", [f"work {200000 + i}" for i in range(4)])))
        holder.start()
        wait_inflight(server, 4)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        with pytest.raises((RequestFailed, ServerUnreachable)) as e:
            client.score("guest", ["late"])
        if isinstance(e.value, RequestFailed):
            assert e.value.code in (503, "UNAVAILABLE")
        holder.join()
    assert [r.status for r in answer["r"]] == [Status.OK] * 4
    assert server.proc.wait(timeout=30) == 0


def test_token_is_sent_and_a_refusal_is_not_retried(fresh):
    server = fresh("--auth-token", "s3cret")
    for url in (server.http, server.grpc_url):
        with RewardClient(url, token="s3cret") as client:
            assert client.score("guest", ["ab"])[0].score == 2.0
        with RewardClient(url, token="wrong") as client:
            with pytest.raises(RequestFailed) as e:
                client.score("guest", ["ab"])
        assert e.value.code in (401, "UNAUTHENTICATED") and e.value.attempts == 1
