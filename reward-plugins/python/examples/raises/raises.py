"""A reward with a bug, for the kit's tests: it divides by the number of sentences in the answer, so
an answer without a full stop raises ZeroDivisionError, which the server reports as PLUGIN_ERROR with this traceback.
A reference `{"bad": true}` is refused as INVALID_INPUT. Other rollouts score normally."""

from reward_kit import InvalidInput, extract_answer, reward


def words_per_sentence(text):
    sentences = text.count(".")
    return len(text.split()) / sentences


@reward(name="raises", description="Words per sentence of the answer (buggy on purpose)", metrics=["words"])
def raises(completion, reference):
    if isinstance(reference, dict) and reference.get("bad"):
        raise InvalidInput("reference marked bad")
    answer = extract_answer(completion, fallback=True)
    ratio = words_per_sentence(answer)
    return min(ratio / 10.0, 1.0), {"words": float(len(answer.split()))}
