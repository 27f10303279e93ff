"""Integration tests: the real reward-server binary, driven over gRPC by a real Python client.

The fixtures (conftest.py) generate the stubs from proto/reward/v1/reward.proto and start the
servers. The built-in rewards come from rewards.toml; `guest` and `guest_work` use the limits test
guest, whose completion selects its behaviour (`loop`, `panic`, `work N`, else its length).
"""

from __future__ import annotations

import queue
import re
import signal
import threading
import time
import tomllib
import uuid

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from conftest import (
    AUTH_TOKEN,
    LIMITS_MAX_ROLLOUTS,
    LIMITS_REQUEST_TIMEOUT_MS,
    REPO_ROOT,
)

SERVICE = "reward.v1.RewardService"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
# Every call gets a deadline, so a hung server fails a test instead of hanging the suite.
CALL_TIMEOUT_S = 20.0


def nonce() -> str:
    return uuid.uuid4().hex[:12]


def code_of(excinfo) -> grpc.StatusCode:
    return excinfo.value.code()


def nova_rollout(pb, rid, answer, reference, *, system="Think in <think></think>, answer in <answer></answer>.",
                 question="What is the growth?", role="assistant"):
    M = pb.pb2.Message
    return pb.pb2.Rollout(
        id=rid,
        messages=[M(role="system", content=system), M(role="user", content=question), M(role=role, content=answer)],
        reference_json=reference,
    )


def assert_provenance(result, reward):
    assert result.HasField("provenance"), result
    p = result.provenance
    assert p.reward == reward
    assert HEX64.match(p.plugin_sha256), f"plugin_sha256 {p.plugin_sha256!r} is not 64 lowercase hex chars"
    assert HEX64.match(p.config_hash), f"config_hash {p.config_hash!r} is not 64 lowercase hex chars"


# --------------------------------------------------------------------------------------------
# Score
# --------------------------------------------------------------------------------------------


def test_score_math_nova_rollouts(stub, pb):
    n = nonce()
    ok = pb.pb2.OK
    rollouts = [
        # Right format, right answer (12.5% == 12.5 percent).
        nova_rollout(pb, "right", f"<think>135/120 = 1.125 [{n}]</think><answer>12.5%</answer>", '{"answer": "12.5%"}'),
        # Right format, wrong answer: 10% for the format only.
        nova_rollout(pb, "wrong", f"<think>guess [{n}]</think><answer>13</answer>", '{"answer": "12.5"}'),
        # No tags: the format fails, so correctness does not count.
        nova_rollout(pb, "no-format", f"12.5 [{n}]", '{"answer": "12.5"}'),
        # The Nova assistant role, and a thousands separator.
        nova_rollout(pb, "nova-role", f"<think>1234 + 766 [{n}]</think><answer>2,000</answer>", '{"answer": "2000"}',
                     role="nova_assistant", question="What is 1,234 + 766?"),
    ]
    expected = {"right": 1.0, "wrong": 0.1, "no-format": 0.0, "nova-role": 1.0}

    resp = stub.Score(pb.pb2.ScoreRequest(reward="math", rollouts=rollouts), timeout=CALL_TIMEOUT_S)

    assert [r.id for r in resp.results] == [r.id for r in rollouts], "results must come in request order"
    for r in resp.results:
        assert r.status == ok, f"{r.id}: status {pb.pb2.Status.Name(r.status)}, error {r.error!r}"
        assert r.HasField("score"), f"{r.id}: no score"
        assert r.score == pytest.approx(expected[r.id], abs=1e-9), f"{r.id}: score {r.score}, reason {r.reason!r}"
        assert r.error == ""
        assert r.instructions > 0, f"{r.id}: instructions {r.instructions}"
        assert not r.cached, f"{r.id}: fresh content must not come from the cache"
        assert_provenance(r, "math")
        names = [m.name for m in r.metrics]
        # The composite reports each component's score, and its metrics under the alias.
        for name in ("fmt", "correct", "fmt.format_ok", "correct.answer_correct"):
            assert name in names, f"{r.id}: metric {name} missing from {names}"
        assert len(names) == len(set(names)), f"{r.id}: duplicate metrics {names}"
        metrics = {m.name: m for m in r.metrics}
        assert metrics["fmt"].kind == pb.pb2.REWARD
        assert metrics["correct"].kind == pb.pb2.REWARD

    by_id = {r.id: r for r in resp.results}
    metric = lambda rid, name: {m.name: m.value for m in by_id[rid].metrics}[name]  # noqa: E731
    assert metric("right", "fmt") == 1.0 and metric("right", "correct") == 1.0
    assert metric("wrong", "fmt") == 1.0 and metric("wrong", "correct.answer_correct") == 0.0
    assert metric("no-format", "fmt") == 0.0
    # All rollouts of one reward share one provenance.
    assert len({(r.provenance.plugin_sha256, r.provenance.config_hash) for r in resp.results}) == 1


def test_score_plugin_reward_provenance_differs_from_composite(stub, pb):
    n = nonce()
    req = lambda reward: pb.pb2.ScoreRequest(  # noqa: E731
        reward=reward, rollouts=[nova_rollout(pb, "x", f"<think>{n}</think><answer>4</answer>", '{"answer": "4"}')]
    )
    fmt = stub.Score(req("think_answer_format"), timeout=CALL_TIMEOUT_S).results[0]
    num = stub.Score(req("numeric_answer"), timeout=CALL_TIMEOUT_S).results[0]
    assert fmt.status == num.status == pb.pb2.OK
    assert fmt.score == 1.0 and num.score == 1.0
    assert_provenance(fmt, "think_answer_format")
    assert_provenance(num, "numeric_answer")
    # Same plugin binary, different configs.
    assert fmt.provenance.plugin_sha256 == num.provenance.plugin_sha256
    assert fmt.provenance.config_hash != num.provenance.config_hash


def test_score_invalid_reference_json_only_fails_that_rollout(stub, pb):
    n = nonce()
    good = f"<think>{n}</think><answer>42</answer>"
    rollouts = [
        nova_rollout(pb, "first", good, '{"answer": "42"}'),
        nova_rollout(pb, "broken", good, '{"answer": 42'),  # not JSON
        nova_rollout(pb, "last", good, '{"answer": "42"}'),
    ]
    resp = stub.Score(pb.pb2.ScoreRequest(reward="math", rollouts=rollouts), timeout=CALL_TIMEOUT_S)
    assert [r.id for r in resp.results] == ["first", "broken", "last"]
    first, broken, last = resp.results
    assert broken.status == pb.pb2.INVALID_INPUT, pb.pb2.Status.Name(broken.status)
    assert "reference_json" in broken.error, broken.error
    for r in (first, last):
        assert r.status == pb.pb2.OK, f"{r.id}: {pb.pb2.Status.Name(r.status)} {r.error!r}"
        assert r.score == 1.0


def test_score_rollout_without_answer_is_invalid_input(stub, pb):
    M = pb.pb2.Message
    rollouts = [
        pb.pb2.Rollout(id="no-answer", messages=[M(role="user", content="Cost?")]),
        pb.pb2.Rollout(id="", completion=f"<think>{nonce()}</think><answer>ok</answer>"),
    ]
    resp = stub.Score(pb.pb2.ScoreRequest(reward="think_answer_format", rollouts=rollouts), timeout=CALL_TIMEOUT_S)
    assert len(resp.results) == 2
    assert resp.results[0].id == "no-answer"
    assert resp.results[0].status == pb.pb2.INVALID_INPUT
    assert resp.results[0].error
    # An empty id is filled in from the position.
    assert resp.results[1].id == "rollout-1"
    assert resp.results[1].status == pb.pb2.OK and resp.results[1].score == 1.0


def test_score_record_json_reads_records_as_the_lambda_door(stub, pb):
    import json
    n = nonce()
    answer = f"<think>135/120 [{n}]</think><answer>12.5%</answer>"
    nova = {"id": "nova", "messages": [{"role": "user", "content": [{"type": "text", "text": "Growth?"}]},
                                       {"role": "nova_assistant", "content": [{"type": "text", "text": answer}]}],
            "metadata": {"reference_answer": {"answer": "12.5%"}}}
    rollouts = [
        pb.pb2.Rollout(record_json=json.dumps(nova)),
        # The same rollout in the typed fields: the same score and metrics.
        nova_rollout(pb, "typed", answer, '{"answer": "12.5%"}'),
        # A record without an id takes the one given beside it.
        pb.pb2.Rollout(id="given", record_json=json.dumps({"prompt": "Growth?", "completion": answer, "reference": {"answer": "12.5%"}})),
        # A record that does not read fails alone, named.
        pb.pb2.Rollout(id="broken", record_json='{"id": "broken", "messages": 7}'),
        pb.pb2.Rollout(id="cut", record_json='{"id": "cut", "messa'),
        # The record is the whole rollout.
        pb.pb2.Rollout(id="both", record_json=json.dumps(nova), completion="x"),
    ]
    results = stub.Score(pb.pb2.ScoreRequest(reward="math", rollouts=rollouts), timeout=CALL_TIMEOUT_S).results
    by_id = {r.id: r for r in results}
    assert [r.id for r in results] == ["nova", "typed", "given", "broken", "cut", "both"]
    for rid in ("nova", "typed", "given"):
        assert by_id[rid].status == pb.pb2.OK and by_id[rid].score == 1.0, by_id[rid]
    metrics = lambda r: [(m.name, m.value) for m in r.metrics]  # noqa: E731
    assert metrics(by_id["nova"]) == metrics(by_id["typed"])
    for rid, want in (("broken", "rollouts[3]"), ("cut", "rollouts[4]"), ("both", "must be empty")):
        assert by_id[rid].status == pb.pb2.INVALID_INPUT, by_id[rid]
        assert want in by_id[rid].error, by_id[rid].error


def test_score_unknown_reward_is_not_found(stub, pb):
    name = f"no_such_reward_{nonce()}"
    with pytest.raises(grpc.RpcError) as e:
        stub.Score(
            pb.pb2.ScoreRequest(reward=name, rollouts=[pb.pb2.Rollout(id="a", completion="x")]), timeout=CALL_TIMEOUT_S
        )
    assert code_of(e) == grpc.StatusCode.NOT_FOUND
    assert name in e.value.details(), e.value.details()


def test_score_cache_hit_on_identical_rollout(stub, pb):
    rollout = nova_rollout(pb, "c1", f"<think>cache {nonce()}</think><answer>7</answer>", '{"answer": "7"}')
    req = pb.pb2.ScoreRequest(reward="math", rollouts=[rollout])
    first = stub.Score(req, timeout=CALL_TIMEOUT_S).results[0]
    rollout.id = "c2"  # the id is echoed, not part of what is scored
    second = stub.Score(pb.pb2.ScoreRequest(reward="math", rollouts=[rollout]), timeout=CALL_TIMEOUT_S).results[0]
    assert first.status == second.status == pb.pb2.OK
    assert not first.cached
    assert second.cached, "an identical rollout must be served from the score cache"
    assert second.id == "c2"
    assert second.score == first.score == 1.0
    assert [(m.name, m.value) for m in second.metrics] == [(m.name, m.value) for m in first.metrics]
    assert second.provenance == first.provenance
    # A different reference is a different rollout: not a cache hit.
    rollout.reference_json = '{"answer": "8"}'
    third = stub.Score(pb.pb2.ScoreRequest(reward="math", rollouts=[rollout]), timeout=CALL_TIMEOUT_S).results[0]
    assert not third.cached
    assert third.score == pytest.approx(0.1)


# --------------------------------------------------------------------------------------------
# ScoreStream
# --------------------------------------------------------------------------------------------


class Stream:
    """A bidi ScoreStream call whose requests are sent one at a time and whose answers are read
    on a background thread, so the test can interleave sends and receives."""

    _END = object()

    def __init__(self, stub, timeout=CALL_TIMEOUT_S):
        self._requests: queue.Queue = queue.Queue()
        self.answers: queue.Queue = queue.Queue()
        self.error = None
        self.half_closed = threading.Event()
        self.call = stub.ScoreStream(self._request_iter(), timeout=timeout)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _request_iter(self):
        while True:
            item = self._requests.get()
            if item is self._END:
                self.half_closed.set()
                return
            yield item

    def _read(self):
        try:
            for answer in self.call:
                self.answers.put(answer)
        except grpc.RpcError as e:
            self.error = e
        finally:
            self.answers.put(self._END)

    def send(self, request):
        self._requests.put(request)

    def close(self):
        self._requests.put(self._END)

    def receive(self, n, timeout=10.0):
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            left = deadline - time.monotonic()
            try:
                item = self.answers.get(timeout=max(left, 0.001))
            except queue.Empty:
                raise AssertionError(f"got {len(got)} of {n} answers within {timeout}s: {[a.id for a in got]}")
            if item is self._END:
                raise AssertionError(f"stream ended after {len(got)} of {n} answers; error: {self.error}")
            got.append(item)
        return got

    def rest(self, timeout=10.0):
        """Everything until the stream ends."""
        self._reader.join(timeout)
        assert not self._reader.is_alive(), f"the stream did not end within {timeout}s of the half-close"
        got = []
        while True:
            item = self.answers.get_nowait()
            if item is self._END:
                return got
            got.append(item)


def test_score_stream_answers_before_half_close(stub, pb):
    n = nonce()
    stream = Stream(stub)
    batches = [
        ("math", [nova_rollout(pb, f"s0-{i}", f"<think>{n} {i}</think><answer>{i}</answer>", f'{{"answer": "{i}"}}')
                  for i in range(3)]),
        ("think_answer_format", [pb.pb2.Rollout(id="s1-0", completion=f"<think>{n}</think><answer>x</answer>"),
                                 pb.pb2.Rollout(id="s1-1", completion=f"no tags {n}")]),
        ("math", [nova_rollout(pb, "s2-0", f"<think>{n}</think><answer>5</answer>", '{"answer": "6"}')]),
    ]
    expected_score = {"s0-0": 1.0, "s0-1": 1.0, "s0-2": 1.0, "s1-0": 1.0, "s1-1": 0.0, "s2-0": 0.1}
    reward_of = {r.id: reward for reward, rs in batches for r in rs}
    seen = []
    # Send one message, read all of its answers, and only then send the next: the answers must
    # arrive while the request stream is still open.
    for reward, rollouts in batches:
        stream.send(pb.pb2.ScoreRequest(reward=reward, rollouts=rollouts))
        got = stream.receive(len(rollouts))
        assert not stream.half_closed.is_set(), "the client had half-closed before these answers arrived"
        assert sorted(a.id for a in got) == sorted(r.id for r in rollouts)
        seen.extend(got)
    # One more message, then half-close right away; its answer must still come.
    stream.send(pb.pb2.ScoreRequest(reward="numeric_answer", rollouts=[
        pb.pb2.Rollout(id="s3-0", completion="<answer>3.0</answer>", reference_json="3")]))
    expected_score["s3-0"] = 1.0
    reward_of["s3-0"] = "numeric_answer"
    stream.close()
    seen.extend(stream.rest())
    assert stream.error is None, f"stream failed: {stream.error.code()} {stream.error.details()}"
    assert stream.call.code() == grpc.StatusCode.OK

    ids = [a.id for a in seen]
    assert sorted(ids) == sorted(expected_score), f"every id exactly once; got {ids}"
    for a in seen:
        assert a.status == pb.pb2.OK, f"{a.id}: {pb.pb2.Status.Name(a.status)} {a.error!r}"
        assert a.score == pytest.approx(expected_score[a.id]), f"{a.id}: {a.score} ({a.reason})"
        assert_provenance(a, reward_of[a.id])


def test_score_stream_many_concurrent_messages(guest_stub, pb):
    # Several messages in flight at once on the guest: every id exactly once, scores by length.
    n = nonce()
    stream = Stream(guest_stub)
    expected = {}
    for m in range(6):
        rollouts = []
        for i in range(5):
            text = f"{n}-{m}-{i}" + "x" * (m * 5 + i)
            rollouts.append(pb.pb2.Rollout(id=f"m{m}-{i}", completion=text))
            expected[f"m{m}-{i}"] = float(len(text))
        stream.send(pb.pb2.ScoreRequest(reward="guest", rollouts=rollouts))
    stream.close()
    got = stream.rest()
    assert stream.error is None, f"stream failed: {stream.error.code()} {stream.error.details()}"
    ids = [a.id for a in got]
    assert len(ids) == len(set(ids)) == len(expected), f"duplicates or missing: {sorted(ids)}"
    assert {a.id: a.score for a in got} == expected


def test_score_stream_unknown_reward_is_not_found(stub, pb):
    name = f"missing_{nonce()}"
    stream = Stream(stub)
    stream.send(pb.pb2.ScoreRequest(reward=name, rollouts=[pb.pb2.Rollout(id="a", completion="x")]))
    stream.close()
    stream.rest()
    assert stream.error is not None, "an unknown reward must fail the stream"
    assert stream.error.code() == grpc.StatusCode.NOT_FOUND
    assert name in stream.error.details()


# --------------------------------------------------------------------------------------------
# ListRewards, health, reflection
# --------------------------------------------------------------------------------------------


def test_list_rewards_matches_rewards_toml(stub, pb):
    with open(REPO_ROOT / "rewards.toml", "rb") as f:
        config = tomllib.load(f)["rewards"]
    resp = stub.ListRewards(pb.pb2.ListRewardsRequest(), timeout=CALL_TIMEOUT_S)
    listed = {r.name: r for r in resp.rewards}
    assert sorted(listed) == sorted(config)
    assert len(resp.rewards) == len(listed), "a reward is listed twice"
    for name, spec in config.items():
        info = listed[name]
        assert info.description == spec.get("description", ""), name
        assert_provenance(info, name)
        assert info.on_error in ("zero", "abstain", "fail")
        assert info.metrics, f"{name}: no metrics listed"
        if "components" in spec:
            assert info.kind == "composite", name
            for alias in spec["components"]:
                assert alias in info.metrics, f"{name}: component {alias} not in metrics {list(info.metrics)}"
        else:
            assert info.kind == "plugin", name
            assert info.plugin_name == spec["plugin"]
            assert info.plugin_version


def test_list_rewards_provenance_matches_scores(stub, pb):
    listed = {r.name: r.provenance for r in stub.ListRewards(pb.pb2.ListRewardsRequest(), timeout=CALL_TIMEOUT_S).rewards}
    r = stub.Score(pb.pb2.ScoreRequest(reward="math", rollouts=[pb.pb2.Rollout(id="p", completion=nonce())]),
                   timeout=CALL_TIMEOUT_S).results[0]
    assert r.provenance == listed["math"]


# Every probe the server's validate runs (reward-server/src/validate.rs); none may go missing
# from the RPC's answer.
LOW_PROBES = {"empty", "whitespace", "empty-tags", "empty-boxed", "think-empty-answer", "answer-placeholder",
              "empty-think-bare-answer", "prompt-echo", "random-text", "one-megabyte"}


def test_validate_builtin_reward_on_its_own_samples(stub, pb):
    # No rollouts given: the server reads examples/validate/think_answer_format.jsonl beside rewards.toml.
    resp = stub.Validate(pb.pb2.ValidateRequest(reward="think_answer_format"), timeout=120.0)
    assert resp.reward == "think_answer_format" and resp.threshold == 0.5
    assert resp.samples > 0
    assert resp.baseline.name == "samples" and resp.baseline.max_score == 1.0, resp.baseline
    low = {p.name: p for p in resp.probes if p.expectation == "low"}
    assert LOW_PROBES <= set(low), sorted(low)
    for p in low.values():
        assert not p.flagged, p
        # A probe that could not be built for any sample has no rollouts and no score.
        assert p.samples == 0 or sum(p.statuses.values()) == p.samples, p
    assert not resp.nondeterministic and not resp.flagged


def test_validate_flags_a_reward_that_pays_any_answer_tag(server_factory, pb, tmp_path):
    # The format plugin asked only for an <answer> tag pays an empty-think, bare-answer hack.
    config = tmp_path / "rewards.toml"
    config.write_text(f'[rewards.any_tag]\nplugin = "{REPO_ROOT / "target/plugins/format.wasm"}"\n'
                      'config = { answer_tag = "answer" }\n')
    stub = server_factory("any-tag", config=config).stub(pb)
    M = pb.pb2.Message
    samples = [pb.pb2.Rollout(id=f"s{i}", messages=[M(role="user", content=f"What is {i} + {i}?"),
                                                   M(role="assistant", content=f"<think>{i}+{i}</think><answer>{2 * i}</answer>")])
               for i in range(1, 4)]
    resp = stub.Validate(pb.pb2.ValidateRequest(reward="any_tag", rollouts=samples, threshold=0.25), timeout=120.0)
    assert resp.samples == 3 and resp.threshold == 0.25
    assert resp.flagged
    flagged = [p for p in resp.probes if p.flagged]
    assert flagged and all(p.expectation == "low" and p.max_score > 0.25 for p in flagged), flagged
    assert all(p.worst_sample for p in flagged), flagged


def test_validate_bad_requests(stub, pb):
    cases = [
        (pb.pb2.ValidateRequest(reward="no_such_reward"), grpc.StatusCode.NOT_FOUND),
        (pb.pb2.ValidateRequest(reward="math", max_samples=65), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.pb2.ValidateRequest(reward="math", threshold=float("nan")), grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for req, want in cases:
        with pytest.raises(grpc.RpcError) as e:
            stub.Validate(req, timeout=CALL_TIMEOUT_S)
        assert code_of(e) == want, f"{req}: {code_of(e)} {e.value.details()}"


def test_health_serving(server):
    health = health_pb2_grpc.HealthStub(server.channel())
    resp = health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=CALL_TIMEOUT_S)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as e:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=CALL_TIMEOUT_S)
    assert code_of(e) == grpc.StatusCode.NOT_FOUND


def _reflection_call(channel, version):
    """One ServerReflectionInfo call at `grpc.reflection.<version>.ServerReflection`. The v1 and
    v1alpha messages are identical on the wire, so grpcio-reflection's v1alpha classes serve both."""
    return channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection(server, version):
    call = _reflection_call(server.channel(), version)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE),
    ]
    try:
        listed, files = list(call(iter(requests), timeout=CALL_TIMEOUT_S))
    except grpc.RpcError as e:
        pytest.fail(f"reflection {version} failed: {e.code()} {e.details()}")
    services = [s.name for s in listed.list_services_response.service]
    assert SERVICE in services, services
    assert "grpc.health.v1.Health" in services, services

    assert files.WhichOneof("message_response") == "file_descriptor_response", files
    protos = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in files.file_descriptor_response.file_descriptor_proto]
    reward_file = next(p for p in protos if p.package == "reward.v1")
    service = next(s for s in reward_file.service if s.name == "RewardService")
    methods = {m.name: m for m in service.method}
    assert sorted(methods) == ["ListRewards", "Score", "ScoreStream", "Validate"]
    assert methods["ScoreStream"].client_streaming and methods["ScoreStream"].server_streaming
    for unary in ("Score", "ListRewards", "Validate"):
        assert not methods[unary].client_streaming and not methods[unary].server_streaming, unary
    assert methods["Validate"].output_type == ".reward.v1.ValidateResponse"


def test_reflection_descriptor_database(server):
    # grpcio-reflection's own client (it speaks v1alpha).
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    db = ProtoReflectionDescriptorDatabase(server.channel())
    assert SERVICE in db.get_services()
    pool = DescriptorPool(db)
    desc = pool.FindServiceByName(SERVICE)
    assert desc.FindMethodByName("Score").output_type.full_name == "reward.v1.ScoreResponse"
    scored = pool.FindMessageTypeByName("reward.v1.ScoredRollout")
    assert scored.fields_by_name["score"].has_presence, "score must be optional (absent when abstained)"


# --------------------------------------------------------------------------------------------
# Limits, deadlines, failures (the limits test guest)
# --------------------------------------------------------------------------------------------


def test_timeout_rollout_does_not_affect_neighbours(guest_stub, pb):
    n = nonce()
    texts = [f"a{n}", "loop", f"bb{n}", "panic", f"ccc{n}", "loop", f"dddd{n}"]
    rollouts = [pb.pb2.Rollout(id=f"t{i}", completion=t) for i, t in enumerate(texts)]
    resp = guest_stub.Score(pb.pb2.ScoreRequest(reward="guest", rollouts=rollouts), timeout=CALL_TIMEOUT_S)
    assert [r.id for r in resp.results] == [r.id for r in rollouts]
    for text, r in zip(texts, resp.results):
        assert_provenance(r, "guest")
        if text == "loop":
            assert r.status == pb.pb2.TIMEOUT, f"{r.id}: {pb.pb2.Status.Name(r.status)} {r.error!r}"
            assert r.instructions == 20_000_000, "fuel runs out at exactly the limit"
            assert "fuel" in r.error
        elif text == "panic":
            assert r.status == pb.pb2.PLUGIN_ERROR, f"{r.id}: {pb.pb2.Status.Name(r.status)}"
            assert r.error
        else:
            assert r.status == pb.pb2.OK, f"{r.id}: {pb.pb2.Status.Name(r.status)} {r.error!r}"
            assert r.score == float(len(text))
            assert r.error == ""
            assert {m.name: m.value for m in r.metrics} == {"length": float(len(text))}


def test_score_keeps_request_order_when_completion_order_differs(guest_stub, pb):
    # Heavy rollouts first, light ones last: with several workers the light ones finish first.
    n = 1000 + int(uuid.uuid4().int % 1000)  # fresh work sizes, so nothing comes from the cache
    sizes = [n * 40, n * 20, n * 10, 1, 2, 3, 4, 5]
    rollouts = [pb.pb2.Rollout(id=f"o{i}", completion=f"work {s}") for i, s in enumerate(sizes)]
    resp = guest_stub.Score(pb.pb2.ScoreRequest(reward="guest_work", rollouts=rollouts), timeout=CALL_TIMEOUT_S)
    assert [r.id for r in resp.results] == [r.id for r in rollouts]
    assert all(r.status == pb.pb2.OK and r.score == 1.0 for r in resp.results), resp
    # `work N` costs instructions proportional to N.
    assert resp.results[0].instructions > resp.results[1].instructions > resp.results[2].instructions


def fresh_work(base: int = 200_000) -> int:
    """A `work` size near `base` that no earlier run of this session has used (no cache hits)."""
    return base + int(uuid.uuid4().int % 1000) * 64


def wait_until_idle(stub, pb, timeout=30.0):
    """Waits until a one-rollout call is answered, so work a test left behind cannot spill into
    the next test. Not an assertion: the tests that care about leftovers check them directly."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        try:
            stub.Score(pb.pb2.ScoreRequest(reward="guest", rollouts=[pb.pb2.Rollout(id="idle", completion=nonce())]),
                       timeout=timeout)
            return
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            time.sleep(0.1)
    raise AssertionError(f"the server was still busy after {timeout}s")


def test_client_deadline_exceeded(guest_stub, pb):
    # ~0.35 s of CPU per rollout, 40 of them: far beyond the 0.2 s deadline.
    base = fresh_work()
    rollouts = [pb.pb2.Rollout(id=f"d{i}", completion=f"work {base + i}") for i in range(40)]
    started = time.monotonic()
    try:
        with pytest.raises(grpc.RpcError) as e:
            guest_stub.Score(pb.pb2.ScoreRequest(reward="guest_work", rollouts=rollouts), timeout=0.2)
        elapsed = time.monotonic() - started
        # The server answers DEADLINE_EXCEEDED at the deadline; grpcio's own timer fires at the same
        # instant and, when it wins the race, reports CANCELLED "Timeout expired" (seen in about one
        # run in four on two loaded cores). Either is this deadline ending the call; anything else
        # (the work's results, another error) is not. Dropping the work is the next test's.
        code, details = code_of(e), e.value.details() or ""
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED or (code == grpc.StatusCode.CANCELLED and "timeout" in details.lower()), (code, details)
        assert elapsed < 1.5, f"the call ended {elapsed:.2f}s after it started, with a 0.2 s deadline"
    finally:
        wait_until_idle(guest_stub, pb)


def test_abandoned_work_is_dropped_after_deadline(server_factory, guest_config, pb):
    # A server of its own, so the work left behind (if any) slows no other test.
    stub = server_factory("abandon", config=guest_config).stub(pb)
    # Connect first: a deadline that expires while the channel is still connecting is reported by
    # grpcio as CANCELLED ("Timeout expired"), not as the server's DEADLINE_EXCEEDED.
    stub.ListRewards(pb.pb2.ListRewardsRequest(), timeout=CALL_TIMEOUT_S)
    base = fresh_work()
    # 16 rollouts of ~0.35 s each: ~2.8 s of work on two workers.
    rollouts = [pb.pb2.Rollout(id=f"a{i}", completion=f"work {base + i}") for i in range(16)]
    with pytest.raises(grpc.RpcError) as e:
        stub.Score(pb.pb2.ScoreRequest(reward="guest_work", rollouts=rollouts), timeout=0.2)
    assert code_of(e) == grpc.StatusCode.DEADLINE_EXCEEDED
    # A one-rollout call right after should wait at most for the rollouts already running
    # (~0.35 s), not for the rest of the batch the caller gave up on.
    started = time.monotonic()
    resp = stub.Score(pb.pb2.ScoreRequest(reward="guest", rollouts=[pb.pb2.Rollout(id="after", completion=nonce())]),
                      timeout=CALL_TIMEOUT_S)
    elapsed = time.monotonic() - started
    assert resp.results[0].status == pb.pb2.OK
    assert elapsed < 1.0, f"a one-rollout call took {elapsed:.2f}s after a batch timed out: the abandoned work still ran"


def test_server_request_timeout_without_client_deadline(limits_server, pb):
    stub = limits_server.stub(pb)
    base = fresh_work()
    # 5 rollouts of ~0.35 s on two workers: ~1 s, more than the server's 0.3 s cap.
    rollouts = [pb.pb2.Rollout(id=f"r{i}", completion=f"work {base + i}") for i in range(LIMITS_MAX_ROLLOUTS)]
    started = time.monotonic()
    try:
        with pytest.raises(grpc.RpcError) as e:
            # The client's deadline is far away; the server's --request-timeout-ms must end the call.
            stub.Score(pb.pb2.ScoreRequest(reward="guest_work", rollouts=rollouts), timeout=CALL_TIMEOUT_S)
        elapsed = time.monotonic() - started
        assert code_of(e) == grpc.StatusCode.DEADLINE_EXCEEDED, f"{code_of(e)}: {e.value.details()}"
        assert elapsed < LIMITS_REQUEST_TIMEOUT_MS / 1000 + 0.7, f"took {elapsed:.2f}s"
    finally:
        wait_until_idle(stub, pb)


def test_deadline_error_reports_the_time_allowed(limits_server, pb):
    stub = limits_server.stub(pb)
    base = fresh_work()
    rollouts = [pb.pb2.Rollout(id=f"q{i}", completion=f"work {base + i}") for i in range(LIMITS_MAX_ROLLOUTS)]
    try:
        with pytest.raises(grpc.RpcError) as e:
            stub.Score(pb.pb2.ScoreRequest(reward="guest_work", rollouts=rollouts), timeout=CALL_TIMEOUT_S)
        assert code_of(e) == grpc.StatusCode.DEADLINE_EXCEEDED
        details = e.value.details()
        assert "allowed 300ms" in details, f"expected the 300 ms allowed in {details!r}"
    finally:
        wait_until_idle(stub, pb)


def test_max_rollouts_per_request(limits_server, pb):
    stub = limits_server.stub(pb)
    ok = stub.Score(pb.pb2.ScoreRequest(reward="guest", rollouts=[
        pb.pb2.Rollout(id=str(i), completion="x" * (i + 1)) for i in range(LIMITS_MAX_ROLLOUTS)]), timeout=CALL_TIMEOUT_S)
    assert [r.score for r in ok.results] == [float(i + 1) for i in range(LIMITS_MAX_ROLLOUTS)]
    with pytest.raises(grpc.RpcError) as e:
        stub.Score(pb.pb2.ScoreRequest(reward="guest", rollouts=[
            pb.pb2.Rollout(id=str(i), completion="x") for i in range(LIMITS_MAX_ROLLOUTS + 1)]), timeout=CALL_TIMEOUT_S)
    assert code_of(e) == grpc.StatusCode.INVALID_ARGUMENT
    assert str(LIMITS_MAX_ROLLOUTS) in e.value.details()


# --------------------------------------------------------------------------------------------
# Auth
# --------------------------------------------------------------------------------------------


def test_auth_token(auth_server, pb):
    stub = auth_server.stub(pb)
    req = pb.pb2.ScoreRequest(reward="think_answer_format",
                              rollouts=[pb.pb2.Rollout(id="a", completion="<think>t</think><answer>a</answer>")])
    for metadata in (None, [("authorization", "Bearer wrong-token")], [("authorization", AUTH_TOKEN)],
                     [("authorization", f"Bearer {AUTH_TOKEN}x")], [("authorization", "Bearer ")]):
        with pytest.raises(grpc.RpcError) as e:
            stub.Score(req, metadata=metadata, timeout=CALL_TIMEOUT_S)
        assert code_of(e) == grpc.StatusCode.UNAUTHENTICATED, f"metadata {metadata}: {code_of(e)}"
        with pytest.raises(grpc.RpcError) as e:
            stub.ListRewards(pb.pb2.ListRewardsRequest(), metadata=metadata, timeout=CALL_TIMEOUT_S)
        assert code_of(e) == grpc.StatusCode.UNAUTHENTICATED, f"ListRewards, metadata {metadata}: {code_of(e)}"
        with pytest.raises(grpc.RpcError) as e:
            stub.Validate(pb.pb2.ValidateRequest(reward="think_answer_format"), metadata=metadata, timeout=CALL_TIMEOUT_S)
        assert code_of(e) == grpc.StatusCode.UNAUTHENTICATED, f"Validate, metadata {metadata}: {code_of(e)}"

    good = [("authorization", f"Bearer {AUTH_TOKEN}")]
    resp = stub.Score(req, metadata=good, timeout=CALL_TIMEOUT_S)
    assert resp.results[0].status == pb.pb2.OK and resp.results[0].score == 1.0
    assert stub.ListRewards(pb.pb2.ListRewardsRequest(), metadata=good, timeout=CALL_TIMEOUT_S).rewards

    # The stream is guarded too.
    responses = stub.ScoreStream(iter([req]), timeout=CALL_TIMEOUT_S)
    with pytest.raises(grpc.RpcError) as e:
        list(responses)
    assert code_of(e) == grpc.StatusCode.UNAUTHENTICATED
    answers = list(stub.ScoreStream(iter([req]), metadata=good, timeout=CALL_TIMEOUT_S))
    assert [a.id for a in answers] == ["a"]


def test_auth_leaves_health_and_reflection_open(auth_server):
    channel = auth_server.channel()
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=CALL_TIMEOUT_S).status == \
        health_pb2.HealthCheckResponse.SERVING
    listed = list(_reflection_call(channel, "v1")(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                  timeout=CALL_TIMEOUT_S))
    assert SERVICE in [s.name for s in listed[0].list_services_response.service]


# --------------------------------------------------------------------------------------------
# Drain
# --------------------------------------------------------------------------------------------


def test_sigterm_drains_in_flight_work(server_factory, guest_config, pb):
    srv = server_factory("drain", config=guest_config)
    stub = srv.stub(pb)
    base = fresh_work()
    rollouts = [pb.pb2.Rollout(id=f"g{i}", completion=f"work {base + i}") for i in range(4)]
    future = stub.Score.future(pb.pb2.ScoreRequest(reward="guest_work", rollouts=rollouts), timeout=CALL_TIMEOUT_S)
    time.sleep(0.15)
    assert not future.done(), "the batch finished before SIGTERM; the test needs more work"
    srv.proc.send_signal(signal.SIGTERM)
    resp = future.result(timeout=CALL_TIMEOUT_S)
    assert [r.id for r in resp.results] == [r.id for r in rollouts]
    assert all(r.status == pb.pb2.OK and r.score == 1.0 for r in resp.results)
    srv.proc.wait(timeout=30)
    assert srv.proc.returncode == 0, srv.stderr()
