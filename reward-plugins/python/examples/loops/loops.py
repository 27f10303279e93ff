"""A reward that never returns when the answer says "loop", for the kit's tests: the server stops it
when it runs out of fuel (TIMEOUT, at the same instruction every run) and scores the next rollout
on a fresh instance. Other answers score 1."""

from reward_kit import reward


@reward(name="loops", description="Spins forever on `loop` (on purpose)")
def loops(completion):
    n = 0
    while "loop" in completion:
        n += 1
    return 1.0
