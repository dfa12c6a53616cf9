"""The rlm-tips texts are the study's, word for word, and go where the study put them: after the user prompt."""

import re

import pytest

from environments import study_tips
from rlm_tui.env import EnvError, load_environment
from runs import stored_run

# The tips as the study's write-up prints them (its page runs each text's lines together).
PRINTED = {
    "verbatim-copy": '<env_tips>Strategy for verbatim copying: 1. Write your initial attempt to answer["content"]2. '
    'Print answer["content"] to see exactly what you wrote3. Compare carefully with the original text - look for '
    "typos, transpositions, missing characters4. Fix any errors using string operations (slicing, replacement, "
    'etc.)5. Only set answer["ready"] = True after you have verified correctness</env_tips>',
    "oolong": "<env_tips>Strategy for long-context information retrieval: 1. Split the context into chunks (e.g., by "
    "paragraphs or fixed character windows with some overlap)2. Write a prompt describing what to look for, then "
    "append it to each chunk to create a list of prompts3. Call llm_batch() once with all prompts to scan chunks in "
    "parallel4. Aggregate the relevant findings from the responses</env_tips>",
    "math-python": "<env_tips>Use Python for calculations. The `sympy` library is available for symbolic "
    "math.</env_tips>",
    "math-python sub_llms": "<env_tips>Use `llm_batch()` for reasoning steps: breaking down the problem, validating "
    "intermediate results, and checking your logic. Use Python for numerical calculations.</env_tips>",
    "deepdive": "<env_tips>Strategy for deep research tasks: 1. **Decompose the question**: Break the main question "
    "into multiple smaller, focused research sub-tasks that can be investigated independently. 2. **Parallel "
    "sub-LLM research**: Use `llm_batch()` to dispatch these sub-tasks in parallel. Each sub-LLM has access to web "
    "search tools (search, open) and can:- Search for relevant information- Open promising results to read full "
    "content- Extract and summarize key facts 2. **Synthesize findings**: After collecting sub-LLM responses, "
    "combine and cross-reference their findings. Look for:- Consistent facts across sources (high confidence)- "
    "Contradictions that need resolution- Gaps that require follow-up research 3. **Iterate if needed**: If the "
    "initial research reveals new questions or missing information, dispatch another batch of targeted sub-tasks. "
    "Repeat until you have sufficient evidence. 4. **Finalize**: Write your synthesized answer to "
    '`answer["content"]`, verify it addresses the original question, then set `answer["ready"] = True`. Key '
    "insight: Sub-LLMs handle the verbose web content, returning concise summaries. This keeps your context clean "
    "while leveraging deep research.</env_tips>",
}
DEFAULTS = {
    "verbatim-copy": ({}, study_tips.VERBATIM_COPY),
    "oolong": ({}, study_tips.OOLONG),
    "math-python": ({}, study_tips.MATH_PYTHON),
    "math-python sub_llms": ({"tips": "sub_llms"}, study_tips.MATH_PYTHON_SUB_LLMS),
    "deepdive": ({}, study_tips.DEEPDIVE),
}


def words(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("name", sorted(PRINTED))
def test_the_default_tips_are_the_study_text(name):
    args, text = DEFAULTS[name]
    tips = load_environment(name.split()[0], args).tips
    assert tips == text
    assert words(tips) == words(PRINTED[name])  # every character the study printed, in its order
    assert tips.startswith("\n") and tips.endswith("</env_tips>") and tips.count("<env_tips>") == 1


@pytest.mark.parametrize("env", ["verbatim-copy", "oolong", "math-python", "deepdive"])
def test_our_own_tips_are_a_named_variant_never_the_default(env):
    detailed = load_environment(env, {"tips": "detailed"}).tips
    assert detailed != load_environment(env).tips
    assert detailed.startswith("\n\n<env_tips>\n") and detailed.endswith("\n</env_tips>")
    with pytest.raises(EnvError, match="tips"):
        load_environment(env, {"tips": "loud"})


@pytest.mark.parametrize("mode", ["rlm", "rlm-tips", "llm"])
def test_rlm_tips_appends_the_tips_to_the_user_prompt_only(tmp_path, mode):
    env = load_environment("verbatim-copy", {"target_length": "40"})
    (example,) = env.examples(1, seed=0)
    _, stored = stored_run(tmp_path, env, mode=mode, n=1)
    (rollout,) = stored.rollouts.values()
    assert "<env_tips>" not in rollout.system_prompt
    if mode == "rlm-tips":
        assert rollout.user_prompt == example.question + study_tips.VERBATIM_COPY
    elif mode == "rlm":
        assert rollout.user_prompt == example.question
    else:
        assert "<env_tips>" not in rollout.user_prompt
