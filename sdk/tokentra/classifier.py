"""A local, keyword-based task classifier using the task types routing and quality scores are kept by.

It runs on the sender thread, never on the caller's, and only sees text that stays in the process.
"""

from __future__ import annotations

import re

__all__ = ["TASK_CATEGORY", "TASK_TYPES", "classify"]

TASK_CATEGORY: dict[str, str] = {}
for _category, _types in (
    ("chat", "greeting faq clarification chitchat instruction_following roleplay customer_support "
             "information_lookup"),
    ("content", "summarization expansion translation rewriting paraphrasing formatting proofreading "
                "content_generation"),
    ("analysis", "sentiment classification entity_extraction comparison data_extraction pattern_recognition "
                 "anomaly_detection clustering"),
    ("coding", "code_generation code_review debugging code_explanation refactoring test_generation "
               "documentation code_completion"),
    ("reasoning", "math logic planning decision_support problem_solving causal_reasoning "
                  "hypothesis_generation"),
    ("creative", "copywriting story_generation brainstorming ideation poetry dialogue_writing marketing_copy "
                 "creative_editing"),
):
    for _name in _types.split():
        TASK_CATEGORY[_name] = _category
TASK_TYPES: tuple[str, ...] = tuple(TASK_CATEGORY)

_DEFAULT = "instruction_following"
_LANGUAGES = ("english|spanish|french|german|italian|portuguese|japanese|chinese|korean|russian|arabic|hindi"
              "|dutch")

# Listed most specific first: on equal scores the earlier type wins.
_KEYWORDS: dict[str, str] = {
    "test_generation": "unit test|unit tests|test cases|pytest|jest|write tests|tests for|test coverage",
    "code_review": "review this code|review my code|code review|pull request|is this code|best practices",
    "debugging": "debug|bug|bugs|traceback|stack trace|exception|error|fix this|not working"
                 "|doesn't work|crash"
                 "|crashes|segfault",
    "refactoring": "refactor|clean up this code|simplify this code|restructure|more readable"
                   "|optimize this code",
    "documentation": "docstring|docstrings|documentation|document this|readme|jsdoc|api docs",
    "code_completion": "complete this code|complete the function|finish this code|fill in the|autocomplete",
    "code_explanation": "explain this code|what does this code|how does this code|walk me through"
                        "|explain the function",
    "code_generation": "write a function|write code|write a script|implement|create a function"
                       "|code for|program that"
                       "|script that|function that|generate code|write a class|sql query",
    "translation": "translate|translation|" + "|".join(
        f"{prep} {lang}" for prep in ("into", "in", "to") for lang in _LANGUAGES.split("|")),
    "summarization": "summarize|summarise|summary|tl dr|tldr|key points|main ideas|brief overview"
                     "|condense|recap",
    "proofreading": "proofread|spelling|grammar|typos|grammatical",
    "paraphrasing": "paraphrase|rephrase|reword|in other words",
    "rewriting": "rewrite|rework|revise|make it more formal|make it sound|more concise",
    "expansion": "expand on|elaborate on|flesh out|make it longer|lengthen|add more detail",
    "formatting": "format|as a table|markdown|bullet points|as json|to csv|reformat",
    "sentiment": "sentiment|positive or negative|tone of|emotion|emotions|feeling",
    "classification": "classify|categorize|categorise|which category|label|spam or not",
    "entity_extraction": "named entities|entities|entity|extract the names|find all names|people and places",
    "data_extraction": "extract|parse|pull out|fields from|structured data|from this invoice"
                       "|from the receipt",
    "anomaly_detection": "anomaly|anomalies|outlier|outliers|unusual|suspicious|fraud|abnormal",
    "clustering": "cluster|clustering|group these|group similar|segment|segmentation",
    "pattern_recognition": "pattern|patterns|trend|trends|recurring|correlation",
    "comparison": "compare|comparison|versus|vs|difference between|pros and cons|contrast",
    "math": "calculate|compute|solve for|equation|integral|derivative|probability|algebra|arithmetic"
            "|percentage|sum of",
    "logic": "logic|logical|puzzle|riddle|deduce|syllogism|true or false|paradox",
    "hypothesis_generation": "hypothesis|hypotheses|hypothesize|what might explain|possible explanations",
    "causal_reasoning": "why did|why does|why do|root cause|what led to|effect of|impact of|caused",
    "decision_support": "should i|should we|which should|recommend|decide|decision|best option"
                        "|trade-off|tradeoff",
    "planning": "plan|schedule|roadmap|itinerary|timeline|milestones",
    "problem_solving": "solve this problem|how can we|solution to|figure out|troubleshoot|workaround",
    "poetry": "poem|poetry|haiku|sonnet|limerick|verse|rhyme|lyrics",
    "story_generation": "story|short story|once upon a time|narrative|fiction|bedtime story",
    "dialogue_writing": "dialogue|dialog|conversation between|screenplay|script for a scene",
    "marketing_copy": "marketing|campaign|slogan|tagline|headline|social media post|tweet|seo",
    "copywriting": "ad copy|write copy|copywriting|product description|call to action|landing page",
    "brainstorming": "brainstorm|ideas for|come up with|list of ideas|suggest some",
    "ideation": "new product idea|startup idea|ideation|novel approach|concepts for",
    "creative_editing": "edit my story|improve the prose|more vivid|punch up|polish this",
    "content_generation": "write an article|blog post|write an essay|essay|article about|newsletter"
                          "|write a report",
    "roleplay": "pretend you are|pretend to be|act as|roleplay|role-play|stay in character",
    "customer_support": "refund|my order|my account|subscription|cancel my|billing|password reset|shipping",
    "clarification": "what do you mean|can you clarify|clarify|i don't understand|could you elaborate",
    "chitchat": "how are you|what's up|tell me a joke|joke|i'm bored|nice to meet",
    "information_lookup": "who is|who was|when did|when was|where is|capital of|population of|look up",
    "faq": "what is|what are|how do i|how can i|tell me about|define|what does",
    "greeting": "hello|hi|hey|good morning|good afternoon|good evening|howdy|greetings",
}
_ORDER = {name: rank for rank, name in enumerate(_KEYWORDS)}
_WORD_RE = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
_CODE_RE = re.compile(
    r"```|\bdef \w+\(|\bfunction \w*\(|\bclass \w+[:({]|=>|#include|\bimport \w+|console\.log|;\s*$",
    re.MULTILINE,
)


def _phrase_index() -> dict[str, list[tuple[tuple[str, ...], str]]]:
    # Keyed by first word, so scanning a text costs one dict lookup per word, not one test per phrase.
    index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for name, alternatives in _KEYWORDS.items():
        for phrase in alternatives.split("|"):
            words = tuple(_WORD_RE.findall(phrase))
            index.setdefault(words[0], []).append((words, name))
    return index


_PHRASES = _phrase_index()
# Cheap substring tests gate the regular expressions, which are slow over long texts.
_CODE_HINTS = ("```", "def ", "function", "class ", "=>", "#include", "import ", "console.log")
_DIGITS = "0123456789"
_ARITHMETIC_RE = re.compile(r"\d\s*[-+*/^×÷]\s*\d")
_EDGE_CHARS = 1000  # instructions sit at the start or the end of a long message, rarely in the middle


def _edges(text: str | None) -> str:
    text = text or ""
    if len(text) > 2 * _EDGE_CHARS:
        text = text[:_EDGE_CHARS] + "\n" + text[-_EDGE_CHARS:]
    return text.lower()


def classify(prompt: str | None, system: str | None = None) -> str | None:
    """Best-guess task type of a request from its last user message and system prompt; None if no text."""
    user = _edges(prompt)
    system_text = _edges(system)
    if not user.strip() and not system_text.strip():
        return None
    scores: dict[str, int] = {}
    # The user's message says what this call is for; the system prompt only hints at it.
    for text, weight in ((user, 2), (system_text, 1)):
        words = _WORD_RE.findall(text)
        for position, word in enumerate(words):
            entries = _PHRASES.get(word)
            if entries is None:
                continue
            for phrase, name in entries:
                if len(phrase) == 1 or tuple(words[position:position + len(phrase)]) == phrase:
                    scores[name] = scores.get(name, 0) + weight
    if "greeting" in scores and len(user.split()) > 6:
        del scores["greeting"]  # "hi, can you ..." is a request, not a greeting
    if any(digit in user for digit in _DIGITS) and _ARITHMETIC_RE.search(user):
        scores["math"] = scores.get("math", 0) + 2
    has_code = any(hint in user for hint in _CODE_HINTS) and _CODE_RE.search(user) is not None
    if not scores:
        return "code_explanation" if has_code else _DEFAULT
    best = min(scores, key=lambda name: (-scores[name], _ORDER[name]))
    if has_code and TASK_CATEGORY[best] != "coding":
        coding = [name for name in scores if TASK_CATEGORY[name] == "coding"]
        best = min(coding, key=lambda name: (-scores[name], _ORDER[name])) if coding else "code_explanation"
    return best
