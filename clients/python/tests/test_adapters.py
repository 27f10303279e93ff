"""The TRL, veRL and OpenRLHF adapters against the real server, called the way each trainer calls
them (the trainers need GPU wheels, so their calling conventions are reproduced here from their
code: TRL `GRPOTrainer._calculate_rewards`, veRL's naive / batch reward managers and reward loop,
OpenRLHF's `SingleTurnAgentExecutor`)."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import reward_client.openrlhf
import reward_client.verl
from reward_client import AsyncRewardClient, RequestFailed, RewardClient, Rollout, ServerUnreachable
from reward_client.verl import RolloutFailed


def call_like_trl(func, prompts, completions, **columns):
    """What GRPOTrainer does with a custom reward function: the dataset columns and its own
    extras as keyword arguments, then None -> NaN."""
    logged = {}
    kwargs = dict(columns, trainer_state=object(), log_extra=lambda *a: None, log_metric=lambda k, v: logged.__setitem__(k, v))
    if inspect.iscoroutinefunction(func):
        out = asyncio.run(func(prompts=prompts, completions=completions, completion_ids=[[1]] * len(prompts), **kwargs))
    else:
        out = func(prompts=prompts, completions=completions, completion_ids=[[1]] * len(prompts), **kwargs)
    assert len(out) == len(prompts) and all(r is None or isinstance(r, float) for r in out)
    return [math.nan if r is None else r for r in out], logged


# -- TRL --------------------------------------------------------------------------------------------


def test_trl_failed_rollouts_are_none_never_zero(server):
    with RewardClient(server.http) as client:
        func = client.trl("guest")
        assert func.__name__ == "guest"
        rewards, logged = call_like_trl(func, ["p1", "p2", "p3"], ["hello", "panic", "invalid"], solution=["a", "b", "c"])
    assert rewards[0] == 5.0 and math.isnan(rewards[1]) and math.isnan(rewards[2])
    assert logged == {"guest/failed": pytest.approx(2 / 3)}


def test_trl_conversational_completions_and_reference(builtin):
    answer = "<think>135/120 = 1.125</think><answer>12.5%</answer>"
    prompts = [[{"role": "user", "content": "Growth in percent?"}]] * 3
    completions = [
        [{"role": "assistant", "content": answer}],
        [{"role": "assistant", "content": "let me call a tool"}, {"role": "tool", "content": "1.125"}, {"role": "assistant", "content": answer}],
        [{"role": "assistant", "content": [{"type": "text", "text": answer}]}],
    ]
    with RewardClient(builtin.grpc_url) as client:
        rewards, _ = call_like_trl(client.trl("numeric_answer", reference_column="answer"), prompts, completions, answer=["12.5", "12.5", "99"])
    assert rewards[0] == 1.0 and rewards[1] == 1.0 and rewards[2] < 1.0


def test_trl_async_function_and_request_failures(server):
    async_client = AsyncRewardClient(server.grpc_url)
    func = async_client.trl("guest_abstain")
    assert inspect.iscoroutinefunction(func)
    rewards, _ = call_like_trl(func, ["p", "p"], ["abcd", "panic"])
    assert rewards[0] == 4.0 and math.isnan(rewards[1])
    with RewardClient("http://127.0.0.1:9", retry=reward_client.RetryPolicy(max_attempts=1)) as down:
        with pytest.raises(ServerUnreachable):
            call_like_trl(down.trl("guest"), ["p"], ["x"])
        rewards, _ = call_like_trl(down.trl("guest", on_request_error="none"), ["p"], ["x"])
        assert math.isnan(rewards[0])


# -- veRL -------------------------------------------------------------------------------------------


def test_verl_compute_score_ok_and_failed(server):
    with RewardClient(server.http) as client:
        v = client.verl("guest")
        # The naive manager calls it with keywords (and may add reward kwargs of its own).
        assert v.compute_score(data_source="d", solution_str="abc", ground_truth="x", extra_info={"index": 3}) == {"score": 3.0, "reward_error": 0.0}
        assert v.compute_score(data_source="d", solution_str="panic", ground_truth="x", extra_info=None, reward_router_address=None) == {"score": 0.0, "reward_error": 1.0}
        assert client.verl("guest_abstain", failure_score=-1.0).compute_score("d", "panic", "x") == {"score": -1.0, "reward_error": 1.0}
        with pytest.raises(RolloutFailed) as e:
            client.verl("guest", on_failure="raise").compute_score("d", "invalid", "x")
        assert e.value.result.status.value == "INVALID_INPUT"
        by_source = client.verl({"a": "guest", "b": "guest_abstain"})
        assert by_source.compute_score("b", "panic", None)["reward_error"] == 1.0
        with pytest.raises(KeyError, match="no reward for data_source 'c'"):
            by_source.compute_score("c", "x", None)


def test_verl_batch_form_is_one_request(server):
    before = server.requests("guest")
    with RewardClient(server.http) as client:
        out = client.verl("guest").compute_score_batch(
            data_sources=["d"] * 6, solution_strs=["a", "bb", "panic", "dddd", "invalid", "ffffff"],
            ground_truths=[None] * 6, extra_infos=[{"i": i} for i in range(6)],
        )
    assert [o["score"] for o in out] == [1.0, 2.0, 0.0, 4.0, 0.0, 6.0]
    assert [o["reward_error"] for o in out] == [0, 0, 1, 0, 1, 0]
    assert server.requests("guest") - before == 1


def boxed(x: str) -> str:
    return f"So the answer is \\boxed{{{x}}}."


def test_verl_group_key_names_the_groups_of_a_group_reward(builtin):
    """veRL passes no prompt to score functions: `group_key` names each rollout's group from
    `extra_info` (veRL's datasets carry the prompt's `index`), and the batch form sends the groups
    whole, so the server's majority vote sees every sample of a prompt."""
    answers = ["4", "4", "5", "7", "8", "8"]
    index = [0, 0, 0, 1, 1, 1]
    with RewardClient(builtin.http) as client:
        v = client.verl("majority_vote", group_key="index")
        out = v.compute_score_batch(
            data_sources=["gsm8k"] * 6, solution_strs=[boxed(a) for a in answers],
            ground_truths=[None] * 6, extra_infos=[{"index": i, "split": "train"} for i in index],
        )
        assert [o["score"] for o in out] == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
        assert all(o["reward_error"] == 0.0 for o in out)
        with pytest.raises(KeyError, match="group_key 'index' is not in this rollout's extra_info"):
            v.compute_score_batch(data_sources=["d"], solution_strs=[boxed("1")], ground_truths=[None], extra_infos=[{"split": "x"}])


def test_trl_groups_by_prompt_and_rollouts_may_name_groups(builtin):
    """TRL sends a step's completions with their prompts: the server groups them by prompt. A
    `Rollout(group=...)` names the group instead, over gRPC and HTTP alike."""
    prompts = ["What is 2+2?"] * 3 + ["What is 3+3?"] * 3
    completions = [boxed(a) for a in ["4", "4", "5", "6", "9", "9"]]
    with RewardClient(builtin.http) as client:
        rewards, _ = call_like_trl(client.trl("majority_vote"), prompts, completions)
    assert rewards == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    for url in (builtin.http, builtin.grpc_url):
        with RewardClient(url) as client:
            got = client.score("majority_vote", [
                Rollout(completion=boxed("1"), prompt="same", group="a"),
                Rollout(completion=boxed("2"), prompt="same", group="b"),
                Rollout(completion=boxed("2"), prompt="same", group="b"),
            ])
        assert [r.metrics["group_size"] for r in got] == [1.0, 2.0, 2.0], url


def test_verl_reward_loop_concurrency_is_batched(server):
    """veRL's reward loop awaits an async compute_score per rollout, concurrently, and runs a sync
    one on its executor: either way the calls share a few requests."""
    async def loop_like_verl(fn, n):
        if inspect.iscoroutinefunction(fn):
            return await asyncio.gather(*(fn(data_source="d", solution_str="z" * i, ground_truth=None, extra_info={}) for i in range(n)))
        loop = asyncio.get_running_loop()
        return await asyncio.gather(*(loop.run_in_executor(None, lambda i=i: fn(data_source="d", solution_str="z" * i, ground_truth=None, extra_info={})) for i in range(n)))

    for transport in ("http", "grpc"):
        url = server.http if transport == "http" else server.grpc_url
        with RewardClient(url, max_wait=0.05) as client:
            v = client.verl("guest")
            for fn in (v.compute_score_async, v.compute_score):
                before = server.requests("guest", transport)
                out = asyncio.run(loop_like_verl(fn, 8))
                assert [o["score"] for o in out] == [float(i) for i in range(8)]
                assert server.requests("guest", transport) - before <= 2


def test_verl_module_functions_read_the_environment(server, monkeypatch):
    monkeypatch.setenv("REWARD_CLIENT_URL", server.http)
    monkeypatch.setenv("REWARD_CLIENT_REWARD", "d1=guest,d2=guest_abstain")
    monkeypatch.setattr(reward_client.verl, "_default", None)
    assert reward_client.verl.compute_score("d1", "abc", None) == {"score": 3.0, "reward_error": 0.0}
    assert asyncio.run(reward_client.verl.compute_score_async("d2", "panic", None)) == {"score": 0.0, "reward_error": 1.0}
    assert reward_client.verl.compute_score_batch(["d1", "d2"], ["a", "b"], [None, None], [{}, {}])[1]["score"] == 1.0
    reward_client.verl._default.client.close()


# -- OpenRLHF -------------------------------------------------------------------------------------


@pytest.fixture
def openrlhf_reward_func(monkeypatch):
    """reward_client/openrlhf.py loaded as OpenRLHF loads `--remote_rm_url x.py`."""

    def load(url, reward="guest"):
        monkeypatch.setenv("REWARD_CLIENT_URL", url)
        monkeypatch.setenv("REWARD_CLIENT_REWARD", reward)
        spec = importlib.util.spec_from_file_location("reward_func", Path(reward_client.openrlhf.__file__))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        loaded.append(module)
        return module.reward_func

    loaded = []
    yield load
    for m in loaded:
        if m._client is not None:
            m._client.close()


def test_openrlhf_batch_is_one_request(server, openrlhf_reward_func):
    reward_func = openrlhf_reward_func(server.http)
    before = server.requests("guest")
    prompts = [f"<|user|>q{i}<|assistant|>" for i in range(16)]
    queries = [p + ("panic" if i == 3 else "a" * i) for i, p in enumerate(prompts)]
    out = reward_func(queries, prompts, [str(i) for i in range(16)])
    assert server.requests("guest") - before == 1
    rewards = list(map(float, out["rewards"]))
    assert rewards == [0.0 if i == 3 else float(i) for i in range(16)]
    assert list(map(float, out["extra_logs"]["reward_error"])) == [1.0 if i == 3 else 0.0 for i in range(16)]
    assert list(map(float, out["scores"])) == rewards


def test_openrlhf_concurrent_single_calls_are_batched(server, openrlhf_reward_func, monkeypatch):
    """Recent OpenRLHF calls reward_func with one query at a time, from threads (asyncio.to_thread)."""
    monkeypatch.setenv("REWARD_CLIENT_MAX_WAIT_MS", "100")
    reward_func = openrlhf_reward_func(server.grpc_url)
    before = server.requests("guest", "grpc")

    async def like_openrlhf():
        # The default executor has min(32, cores + 4) threads; a trainer host has many cores.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(32))
        return await asyncio.gather(*(asyncio.to_thread(reward_func, [f"P{i}:" + "b" * i], [f"P{i}:"], [None]) for i in range(32)))

    out = asyncio.run(like_openrlhf())
    assert [float(o["rewards"][0]) for o in out] == [float(i) for i in range(32)]
    assert server.requests("guest", "grpc") - before <= 2, "32 concurrent calls should share one or two requests"


def test_openrlhf_failure_score_and_request_failure(server, openrlhf_reward_func, monkeypatch):
    reward_func = openrlhf_reward_func(server.http, reward="guest_abstain")
    monkeypatch.setenv("REWARD_CLIENT_FAILURE_SCORE", "-1")
    out = reward_func(["ok", "panic"], None, None)
    assert list(map(float, out["rewards"])) == [2.0, -1.0]
    bad = openrlhf_reward_func(server.http, reward="no_such_reward")
    with pytest.raises(RequestFailed):
        bad(["x"], ["x"], ["x"])


def test_batching_calls_refuse_a_group_reward_and_the_batch_forms_keep_groups_whole(builtin):
    """`score_one` / `score_many` batch by time, not by group: for a reward that scores whole
    groups they raise `GroupRewardSplit` before sending anything (veRL's one-at-a-time
    `compute_score` too), over HTTP and gRPC; `score` and OpenRLHF's `reward_func` send the groups
    whole. A reward that does not group is batched as before."""
    from reward_client import GroupRewardSplit

    boxed = lambda n: f"<think>t</think><answer>\\boxed{{{n}}}</answer>"
    for url in (builtin.http, builtin.grpc_url):
        with RewardClient(url) as client:
            assert client.scores_groups("majority_vote") is True and client.scores_groups("numeric_answer") is False
            sent = client.requests_sent
            with pytest.raises(GroupRewardSplit, match="reward `majority_vote` scores whole GRPO groups"):
                client.score_one("majority_vote", Rollout(completion=boxed("1"), prompt="p"))
            with pytest.raises(GroupRewardSplit):
                client.score_many("majority_vote", [Rollout(completion=boxed("1"), prompt="p")] * 2)
            with pytest.raises(GroupRewardSplit):
                client.verl("majority_vote").compute_score("d", boxed("1"), "1", {})
            assert client.requests_sent == sent, "nothing was sent"
            got = client.score("majority_vote", [Rollout(completion=boxed(n), prompt="p") for n in ("1", "1", "2")])
            assert [r.score for r in got] == [1.0, 1.0, 0.0] and [r.metrics["group_size"] for r in got] == [3.0] * 3, url
            assert client.score_one("numeric_answer", Rollout(completion="<answer>4</answer>", reference="4")).status.name == "OK"


def test_openrlhf_sends_a_group_rewards_batch_whole(builtin, openrlhf_reward_func):
    """OpenRLHF's `reward_func` on a group reward: the batch goes as one `score` request (not
    through the batcher), its prompts' groups whole."""
    reward_func = openrlhf_reward_func(builtin.http, reward="majority_vote")
    prompts = ["<|user|>p<|assistant|>"] * 3 + ["<|user|>q<|assistant|>"] * 2
    answers = ["1", "1", "2", "5", "5"]
    queries = [p + f"<think>t</think><answer>\\boxed{{{a}}}</answer>" for p, a in zip(prompts, answers)]
    out = reward_func(queries, prompts, [""] * 5)
    assert list(map(float, out["rewards"])) == [1.0, 1.0, 0.0, 1.0, 1.0]
    assert list(map(float, out["extra_logs"]["reward_error"])) == [0.0] * 5
