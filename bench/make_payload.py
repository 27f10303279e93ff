#!/usr/bin/env python3
"""Writes a Nova reward-Lambda payload: N rollouts with ~SIZE-byte completions (reasoning, then an
answer), FinQA-style numeric references. Deterministic. Usage: make_payload.py N SIZE OUT.json"""
import json
import sys

n, size, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
items = []
for i in range(n):
    think = ""
    step = 0
    while len(think) < size - 60:
        think += f"Step {step}: revenue moved from {80 + i} to {90 + i + step}, a change of {10 + step}. "
        step += 1
    answer = f"{12.5 + i % 3}%"
    items.append({
        "id": f"rollout-{i}",
        "messages": [
            {"role": "system", "content": "Think in <think></think>, answer in <answer></answer>."},
            {"role": "user", "content": "By what percent did revenue grow?"},
            {"role": "assistant", "content": f"<think>{think}</think>\n<answer>{answer}</answer>"},
        ],
        "reference_answer": {"answer": "12.5%"},
    })
with open(out, "w") as f:
    json.dump(items, f)
