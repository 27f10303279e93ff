"""A group reward, for GRPO: within the completions of one prompt, the shortest correct answer scores
1, another correct answer scores `partial` (0 by default), a wrong one 0. Ties for the shortest all
score 1. Declare it `groups = true` in the rewards TOML so each call holds one whole group.

The group must share one numeric reference: a group without one is INVALID_INPUT, and a group whose
references disagree is not one prompt's completions, so the reward raises (PLUGIN_ERROR, the whole
group)."""

from reward_kit import Score, extract_answer, group_reward, parse_number, parse_reference


def _check(config):
    if not 0.0 <= config["partial"] <= 1.0:
        raise ValueError(f"partial: must be between 0 and 1, got {config['partial']}")


def _correct(answer, reference):
    return answer is not None and abs(answer - reference) <= 1e-9 * max(1.0, abs(reference))


@group_reward(
    name="best_of_group",
    description="1 for the shortest correct answer of its group, `partial` for another correct one, else 0",
    metrics=["correct", "shortest", "chars"],
    config={"partial": 0.0},
    validate=_check,
)
def best_of_group(completions, references, config):
    targets = [parse_number(parse_reference(r)) for r in references]  # InvalidInput without one
    if any(t != targets[0] for t in targets):
        raise ValueError(f"the group's references disagree: {sorted(set(map(str, targets)))}")
    correct = [_correct(parse_number(extract_answer(c, fallback=True)), targets[0]) for c in completions]
    shortest = min((len(c) for c, ok in zip(completions, correct) if ok), default=None)
    results = []
    for completion, ok in zip(completions, correct):
        best = ok and len(completion) == shortest
        value = 1.0 if best else (config["partial"] if ok else 0.0)
        results.append(Score(value, rewards={"correct": float(ok), "shortest": float(best)}, metrics={"chars": float(len(completion))}))
    return results
