"""Faults the real server does not produce on demand, from local stand-ins: a 503 with
Retry-After, a 502, a gRPC pushback trailer, a RESOURCE_EXHAUSTED without one; and the backoff."""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest

from reward_client import RequestFailed, RetryPolicy, RewardClient
from reward_client._proto import reward_pb2, reward_pb2_grpc

OK_BODY = {"results": [{"id": "0", "score": 1.0, "status": "OK", "metrics": {}, "instructions": 1, "latency_us": 1,
                        "provenance": {"reward": "r", "plugin_sha256": "p", "config_hash": "c"}}]}


class Script:
    """A stand-in HTTP server answering `POST /v1/score` from a list of (status, headers, body)."""

    def __init__(self, answers):
        self.answers, self.times, self.headers = list(answers), [], []
        script = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["content-length"]))
                script.times.append(time.monotonic())
                script.headers.append(dict(self.headers))
                status, headers, body = script.answers.pop(0) if script.answers else (200, {}, OK_BODY)
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def script():
    made = []

    def make(*answers):
        made.append(Script(answers))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_503_retry_after_is_honoured(script):
    s = script((503, {"retry-after": "1"}, {"error": "shutting down", "kind": "shutting_down"}))
    with RewardClient(s.url, retry=RetryPolicy(initial_backoff=0.01, max_backoff=0.01)) as client:
        (r,) = client.score("r", ["x"], timeout=10)
    assert r.score == 1.0 and len(s.times) == 2
    assert s.times[1] - s.times[0] >= 1.0, "retried before the Retry-After"
    # The deadline travels with each attempt, shrinking.
    assert int(s.headers[0]["x-timeout-ms"]) > int(s.headers[1]["x-timeout-ms"]) > 8000


def test_502_is_retried_and_4xx_is_not(script):
    s = script((502, {}, {"error": "bad gateway"}), (502, {}, {"error": "bad gateway"}))
    with RewardClient(s.url, retry=RetryPolicy(initial_backoff=0.01)) as client:
        assert client.score("r", ["x"])[0].score == 1.0
    assert len(s.times) == 3
    for status in (400, 401, 408, 413, 500):
        s = script((status, {}, {"error": "no", "kind": "k"}))
        with RewardClient(s.url) as client:
            with pytest.raises(RequestFailed) as e:
                client.score("r", ["x"])
        assert (e.value.code, e.value.attempts, len(s.times)) == (status, 1, 1)


def test_gives_up_after_max_attempts(script):
    s = script(*[(503, {"retry-after": "0"}, {"error": "down"})] * 5)
    with RewardClient(s.url, retry=RetryPolicy(max_attempts=3, initial_backoff=0.01)) as client:
        with pytest.raises(RequestFailed) as e:
            client.score("r", ["x"])
    assert e.value.attempts == 3 and len(s.times) == 3 and "gave up after 3 attempts" in str(e.value)


class Refusing(reward_pb2_grpc.RewardServiceServicer):
    """A stand-in gRPC server refusing the first `n` calls with RESOURCE_EXHAUSTED."""

    def __init__(self, n: int, pushback_ms: str | None):
        self.n, self.pushback_ms, self.times = n, pushback_ms, []

    def Score(self, request, context):
        self.times.append(time.monotonic())
        if len(self.times) <= self.n:
            if self.pushback_ms is not None:
                context.set_trailing_metadata((("grpc-retry-pushback-ms", self.pushback_ms),))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "overloaded")
        return reward_pb2.ScoreResponse(results=[reward_pb2.ScoredRollout(id=r.id, score=2.0, status=reward_pb2.OK) for r in request.rollouts])


@pytest.fixture
def grpc_standin():
    servers = []

    def make(n, pushback_ms):
        servicer = Refusing(n, pushback_ms)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        reward_pb2_grpc.add_RewardServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"grpc://127.0.0.1:{port}", servicer

    yield make
    for s in servers:
        s.stop(0)


def test_grpc_pushback_trailer_is_honoured(grpc_standin):
    url, servicer = grpc_standin(1, "700")
    with RewardClient(url, retry=RetryPolicy(initial_backoff=0.01, max_backoff=0.01)) as client:
        (r,) = client.score("r", ["x"])
    assert r.score == 2.0 and len(servicer.times) == 2
    assert servicer.times[1] - servicer.times[0] >= 0.7


def test_grpc_resource_exhausted_without_pushback_is_not_retried(grpc_standin):
    # gRPC's retry design: no (or a malformed) pushback on RESOURCE_EXHAUSTED means do not retry.
    for pushback in (None, "-1", "soon"):
        url, servicer = grpc_standin(1, pushback)
        with RewardClient(url) as client:
            with pytest.raises(RequestFailed) as e:
                client.score("r", ["x"])
        assert (e.value.code, e.value.attempts, len(servicer.times)) == ("RESOURCE_EXHAUSTED", 1, 1)


def test_backoff_is_full_jitter_capped_and_at_least_the_pushback():
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, multiplier=2.0)
    rng = random.Random(7)
    for attempt, cap in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (9, 1.0)]:
        waits = [policy.backoff(attempt, rng=rng) for _ in range(500)]
        assert 0 <= min(waits) < cap * 0.1 and cap * 0.9 < max(waits) <= cap
    assert all(policy.backoff(0, pushback=2.0, rng=rng) == 2.0 for _ in range(50))
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
