"""The study's environment tips, byte for byte: `rlm-tips` appends one to the user prompt, as the study did.

Each text begins with its own line breaks and is wrapped in <env_tips> tags, so it can be found and stripped again."""

VERBATIM_COPY = """

<env_tips>
Strategy for verbatim copying:
1. Write your initial attempt to answer["content"]
2. Print answer["content"] to see exactly what you wrote
3. Compare carefully with the original text - look for typos, transpositions, missing characters
4. Fix any errors using string operations (slicing, replacement, etc.)
5. Only set answer["ready"] = True after you have verified correctness
</env_tips>"""

OOLONG = """
<env_tips>
Strategy for long-context information retrieval:
1. Split the context into chunks (e.g., by paragraphs or fixed character windows with some overlap)
2. Write a prompt describing what to look for, then append it to each chunk to create a list of prompts
3. Call llm_batch() once with all prompts to scan chunks in parallel
4. Aggregate the relevant findings from the responses
</env_tips>"""

MATH_PYTHON = """
<env_tips>
Use Python for calculations. The `sympy` library is available for symbolic math.
</env_tips>"""

MATH_PYTHON_SUB_LLMS = """
<env_tips>
Use `llm_batch()` for reasoning steps: breaking down the problem, validating intermediate results, and checking your logic. Use Python for numerical calculations.
</env_tips>"""

# The study's numbering (1, 2, 2, 3, 4) is kept: these are the words its RLM+tips runs saw.
DEEPDIVE = """

<env_tips>
Strategy for deep research tasks:

1. **Decompose the question**: Break the main question into multiple smaller, focused research sub-tasks that can be investigated independently.

2. **Parallel sub-LLM research**: Use `llm_batch()` to dispatch these sub-tasks in parallel. Each sub-LLM has access to web search tools (search, open) and can:
- Search for relevant information
- Open promising results to read full content
- Extract and summarize key facts

2. **Synthesize findings**: After collecting sub-LLM responses, combine and cross-reference their findings. Look for:
- Consistent facts across sources (high confidence)
- Contradictions that need resolution
- Gaps that require follow-up research

3. **Iterate if needed**: If the initial research reveals new questions or missing information, dispatch another batch of targeted sub-tasks. Repeat until you have sufficient evidence.

4. **Finalize**: Write your synthesized answer to `answer["content"]`, verify it addresses the original question, then set `answer["ready"] = True`.

Key insight: Sub-LLMs handle the verbose web content, returning concise summaries. This keeps your context clean while leveraging deep research.
</env_tips>"""


def wrapped(text: str) -> str:
    """One of our own, longer tips, set off from the prompt as the study's are."""
    return f"\n\n<env_tips>\n{text}\n</env_tips>"
