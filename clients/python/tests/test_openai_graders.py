"""OpenAI's grader API on the server (`[graders]` in rewards.toml), called by OpenAI's own Python
SDK (`client.fine_tuning.alpha.graders.run` / `.validate`, pointed at the server with
`base_url`): what someone who tries their RFT grader against OpenAI runs, unchanged."""

from __future__ import annotations

import openai
import pytest


@pytest.fixture(scope="module")
def client(builtin):
    return openai.OpenAI(api_key="unused", base_url=f"{builtin.http}/v1", max_retries=0, timeout=60)


EXACT = {
    "type": "string_check",
    "name": "exact capital",
    "input": "{{sample.output_text}}",
    "reference": "{{item.reference_answer}}",
    "operation": "eq",
}


def test_run_scores_a_string_check_in_openais_shape(client):
    hit = client.fine_tuning.alpha.graders.run(grader=EXACT, model_sample="Paris", item={"reference_answer": "Paris"})
    assert hit.reward == 1.0
    assert hit.metadata.name == "exact capital" and hit.metadata.type == "string_check"
    errors = hit.metadata.errors.model_dump(by_alias=True)
    assert not any(v for k, v in errors.items() if not k.endswith(("_details", "_type"))), errors
    assert hit.metadata.execution_time >= 0
    assert hit.sub_rewards == {}

    miss = client.fine_tuning.alpha.graders.run(grader=EXACT, model_sample="Lyon", item={"reference_answer": "Paris"})
    assert miss.reward == 0.0


def test_multi_reports_its_graders_scores_as_sub_rewards(client):
    grader = {
        "type": "multi",
        "name": "capital",
        "graders": {
            "exact": EXACT,
            "short": {"type": "python", "source": "def grade(sample, item):\n    return float(len(sample['output_text']) <= 5)\n"},
        },
        "calculate_output": "0.5 * exact + 0.5 * short",
    }
    r = client.fine_tuning.alpha.graders.run(grader=grader, model_sample="Paris", item={"reference_answer": "Paris"})
    assert r.reward == 1.0
    assert r.sub_rewards == {"exact": 1.0, "short": 1.0}
    r = client.fine_tuning.alpha.graders.run(grader=grader, model_sample="Lyon!!", item={"reference_answer": "Paris"})
    assert r.reward == 0.0 and r.sub_rewards == {"exact": 0.0, "short": 0.0}


def test_a_failing_grader_is_flagged_never_a_silent_zero(client):
    raising = {"type": "python", "name": "strict", "source": "def grade(sample, item):\n    return item['answer']\n"}
    r = client.fine_tuning.alpha.graders.run(grader=raising, model_sample="x", item={"reference_answer": "y"})
    errors = r.metadata.errors
    assert errors.python_grader_runtime_error is True
    assert "KeyError" in errors.python_grader_runtime_error_details
    extra = r.metadata.model_extra
    assert extra["status"] == "PLUGIN_ERROR" and "KeyError" in extra["error"]

    # No judge is granted by rewards.toml's [graders]: a model grader fails as the judge's error.
    model = {"type": "score_model", "name": "judge", "input": [{"role": "user", "content": "{{sample.output_text}}"}]}
    r = client.fine_tuning.alpha.graders.run(grader=model, model_sample="x")
    assert r.metadata.errors.api_model_grader_server_error is True, r.metadata
    assert r.metadata.model_extra["status"] == "JUDGE_ERROR"


def test_validate_echoes_a_good_grader_and_names_the_field_of_a_bad_one(client):
    assert client.fine_tuning.alpha.graders.validate(grader=EXACT).grader.model_dump(exclude_none=True) == EXACT
    with pytest.raises(openai.BadRequestError) as bad:
        client.fine_tuning.alpha.graders.validate(grader=dict(EXACT, operation="equals"))
    assert "operation" in str(bad.value), bad.value
    with pytest.raises(openai.BadRequestError) as bad:
        client.fine_tuning.alpha.graders.run(grader=dict(EXACT, refrence="x"), model_sample="Paris")
    assert "refrence" in str(bad.value), bad.value
