//! `snippet`: how open-source trainers reach the server directly (no Lambda): the exact flags or
//! code for OpenRLHF (`--remote_rm_url`), veRL (a custom reward function) and TRL (a reward
//! function).

/// The trainers with a snippet.
pub const TRAINERS: [&str; 3] = ["openrlhf", "verl", "trl"];

/// The snippet for `trainer`, pointing at `server` (`http(s)://HOST:PORT`) and `reward`.
pub fn snippet(trainer: &str, server: &str, reward: &str) -> Option<String> {
    let server = server.trim_end_matches('/');
    Some(match trainer {
        "openrlhf" => format!(
            "# OpenRLHF: the server speaks OpenRLHF's remote reward protocol on /get_reward.\n\
             # Add to your `python -m openrlhf.cli.train_ppo_ray ...` command:\n\
             --remote_rm_url {server}/v1/rewards/{reward}/get_reward\n\
             # With auth on the server, OpenRLHF sends no token: keep the server on a private network,\n\
             # or put it behind a proxy that adds `authorization: Bearer $REWARD_SERVER_TOKEN`."
        ),
        "verl" => format!(
            r#"# veRL: save as reward_server_fn.py and run with
#   custom_reward_function.path=reward_server_fn.py custom_reward_function.name=compute_score
import os, requests

URL = "{server}/v1/score"
HEADERS = {{"authorization": "Bearer " + os.environ["REWARD_SERVER_TOKEN"]}} if "REWARD_SERVER_TOKEN" in os.environ else {{}}

def compute_score(data_source, solution_str, ground_truth, extra_info=None):
    body = {{"reward": "{reward}", "rollouts": [{{"completion": solution_str, "reference": ground_truth}}]}}
    r = requests.post(URL, json=body, headers=HEADERS, timeout=60)
    r.raise_for_status()
    result = r.json()["results"][0]
    return result["score"] if result.get("score") is not None else 0.0
"#
        ),
        "trl" => format!(
            r#"# TRL (GRPOTrainer): pass reward_funcs=[reward_server] to GRPOTrainer.
import os, requests

URL = "{server}/v1/score"
HEADERS = {{"authorization": "Bearer " + os.environ["REWARD_SERVER_TOKEN"]}} if "REWARD_SERVER_TOKEN" in os.environ else {{}}

def _text(c):
    return c if isinstance(c, str) else c[-1]["content"]  # conversational: the last message

def reward_server(prompts, completions, reference=None, **kwargs):
    refs = reference if reference is not None else [None] * len(completions)
    rollouts = [{{"id": str(i), "completion": _text(c), "reference": r}} for i, (c, r) in enumerate(zip(completions, refs))]
    r = requests.post(URL, json={{"reward": "{reward}", "rollouts": rollouts}}, headers=HEADERS, timeout=120)
    r.raise_for_status()
    return [x["score"] if x.get("score") is not None else 0.0 for x in r.json()["results"]]
"#
        ),
        _ => return None,
    })
}
