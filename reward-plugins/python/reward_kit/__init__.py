"""reward_kit: write a reward for the reward server as a plain Python function.

```python
from reward_kit import reward, extract_answer, parse_number

@reward(name="exact_number", metrics=["answer_found"])
def score(completion, reference):
    answer = parse_number(extract_answer(completion) or "")
    return float(answer == parse_number(reference)), {"answer_found": float(answer is not None)}
```

`python -m reward_kit build my_reward.py -o my_reward.wasm` turns the file into a sandboxed
WebAssembly component (componentize-py, no WASI) that the server loads like any other plugin.
`@group_reward` scores a whole GRPO group in one call (a reward declared `groups = true`).
Natively the same function is a plain callable: test it with pytest, or score a JSONL file with
`python -m reward_kit run my_reward.py --input rollouts.jsonl`.
"""

from .types import InvalidInput, Message, Rollout, Score
from .registry import ConfigError, GroupRewardFunction, RewardFunction, group_reward, reward
from .helpers import (
    extract_answer,
    extract_boxed,
    extract_code,
    extract_tag,
    last_assistant_turn,
    parse_json,
    parse_number,
    parse_reference,
    strip_reasoning,
)

__all__ = [
    "reward",
    "group_reward",
    "RewardFunction",
    "GroupRewardFunction",
    "ConfigError",
    "Rollout",
    "Message",
    "Score",
    "InvalidInput",
    "last_assistant_turn",
    "strip_reasoning",
    "extract_tag",
    "extract_boxed",
    "extract_code",
    "extract_answer",
    "parse_number",
    "parse_json",
    "parse_reference",
]

__version__ = "0.1.0"
