"""OpenRLHF's own remote-reward client behaviour against the batching `reward_func`, side by side.

    python3 clients/python/bench/openrlhf_bench.py [--url http://127.0.0.1:8080] [--rollouts 4000]
        [--concurrency 64] [--reward think_answer_format]

Without `--url` it starts `target/release/reward-server` (or `REWARD_SERVER_BIN`) with the
built-in rewards on ephemeral loopback ports, and stops it at the end.

Modes, each scoring the same number of distinct rollouts (distinct per mode too, so the server's
score cache never helps one mode with another's work):

- `openrlhf-http`: what OpenRLHF does with `--remote_rm_url http://...`: one POST per rollout to
  the server's `/v1/rewards/{name}/get_reward`, on a new connection each (OpenRLHF opens an
  `aiohttp.ClientSession` per request), `--concurrency` at once.
- `reward_func, 1 per call`: `reward_client/openrlhf.py` loaded as OpenRLHF loads a
  `--remote_rm_url x.py` file and called as recent OpenRLHF calls it: one query per call, from
  `--concurrency` threads at once; the shared client's batcher joins the calls into requests.
- `reward_func, whole batch`: the same file called once with every rollout (older OpenRLHF
  passes a micro-batch per call).
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(HERE.parent))


def start_server() -> tuple[subprocess.Popen, str]:
    binary = os.environ.get("REWARD_SERVER_BIN", str(REPO / "target" / "release" / "reward-server"))
    proc = subprocess.Popen(
        [binary, "serve", "--config", str(REPO / "rewards.toml"), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
         "--watch-interval-ms", "0", "--cache-dir", str(REPO / "target" / "test-artifact-cache")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("REWARD_SERVER_")},
    )
    for raw in proc.stdout:
        m = re.match(r"^reward-server listening: grpc=(\S+) http=(\S+)$", raw.decode().strip())
        if m:
            return proc, m.group(2)
    raise SystemExit(f"{binary} exited without listening")


def requests_seen(url: str, reward: str) -> int:
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    pat = re.compile(rf'^reward_requests_total\{{reward="{re.escape(reward)}",transport="[^"]*",outcome="[^"]*"\}} (\d+)$')
    return sum(int(m.group(1)) for line in text.splitlines() if (m := pat.match(line)))


def corpus(tag: str, n: int) -> tuple[list[str], list[str], list[str]]:
    prompts = [f"<|user|>[{tag}] What is {i} + 1?<|assistant|>" for i in range(n)]
    queries = [p + f"<think>{i} plus one</think><answer>{i + 1}</answer>" for i, p in enumerate(prompts)]
    return queries, prompts, [str(i + 1) for i in range(n)]


def openrlhf_http(url: str, reward: str, n: int, concurrency: int) -> list[float]:
    host, port = urlsplit(url).hostname, urlsplit(url).port
    path = f"/v1/rewards/{reward}/get_reward"
    queries, prompts, labels = corpus("openrlhf-http", n)

    def one(i: int) -> float:
        conn = http.client.HTTPConnection(host, port, timeout=180)  # a new connection per rollout
        try:
            body = json.dumps({"query": [queries[i]], "prompts": [prompts[i]], "labels": [labels[i]]})
            conn.request("POST", path, body=body, headers={"content-type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200, response.read()
            return json.loads(response.read())["rewards"][0]
        finally:
            conn.close()

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(n)))


def load_reward_func(url: str, reward: str):
    os.environ["REWARD_CLIENT_URL"] = url
    os.environ["REWARD_CLIENT_REWARD"] = reward
    path = HERE.parent / "reward_client" / "openrlhf.py"
    spec = importlib.util.spec_from_file_location("reward_func", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reward_func_single(module, n: int, concurrency: int) -> list[float]:
    queries, prompts, labels = corpus("reward_func-single", n)

    def one(i: int) -> float:
        return float(module.reward_func([queries[i]], [prompts[i]], [labels[i]])["rewards"][0])

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(n)))


def reward_func_batch(module, n: int) -> list[float]:
    queries, prompts, labels = corpus("reward_func-batch", n)
    return [float(x) for x in module.reward_func(queries, prompts, labels)["rewards"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="a running server's HTTP address (default: start one)")
    ap.add_argument("--reward", default="think_answer_format")
    ap.add_argument("--rollouts", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    proc, url = (None, args.url) if args.url else start_server()
    try:
        module = load_reward_func(url, args.reward)
        modes = [
            ("openrlhf-http (1 request + 1 connection per rollout)", lambda: openrlhf_http(url, args.reward, args.rollouts, args.concurrency)),
            ("reward_func, 1 rollout per call (batched)", lambda: reward_func_single(module, args.rollouts, args.concurrency)),
            ("reward_func, whole batch per call", lambda: reward_func_batch(module, args.rollouts)),
        ]
        print(f"{args.rollouts} rollouts of {args.reward!r}, concurrency {args.concurrency}, server {url}")
        print(f"{'mode':<55} {'seconds':>8} {'rollouts/s':>11} {'requests':>9}")
        for name, run in modes:
            before = requests_seen(url, args.reward)
            started = time.perf_counter()
            scores = run()
            took = time.perf_counter() - started
            assert len(scores) == args.rollouts and all(s == 1.0 for s in scores), "every rollout should score 1.0"
            sent = requests_seen(url, args.reward) - before
            print(f"{name:<55} {took:>8.2f} {args.rollouts / took:>11,.0f} {sent:>9,}")
        module.client().close()
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
