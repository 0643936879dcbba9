"""The local task classifier speaks the task types routing uses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokentra import TASK_CATEGORY, TASK_TYPES, classify

SEED_TASK_TYPES = """
greeting faq clarification chitchat instruction_following roleplay customer_support information_lookup
summarization expansion translation rewriting paraphrasing formatting proofreading content_generation
sentiment classification entity_extraction comparison data_extraction pattern_recognition anomaly_detection
clustering code_generation code_review debugging code_explanation refactoring test_generation documentation
code_completion math logic planning decision_support problem_solving causal_reasoning hypothesis_generation
copywriting story_generation brainstorming ideation poetry dialogue_writing marketing_copy creative_editing
""".split()


def test_task_types_are_the_seeds() -> None:
    assert set(TASK_TYPES) == set(SEED_TASK_TYPES) and len(TASK_TYPES) == 47
    assert set(TASK_CATEGORY.values()) == {"chat", "content", "analysis", "coding", "reasoning", "creative"}


@pytest.mark.parametrize(("prompt", "system", "expected"), [
    ("hello there!", None, "greeting"),
    ("Hi, can you write a function that parses dates in Python?", None, "code_generation"),
    ("TL;DR this thread please", None, "summarization"),
    ("Translate into German: where is the station?", None, "translation"),
    ("Traceback (most recent call last): KeyError 'id' -- how do I fix this?", None, "debugging"),
    ("Write unit tests for the parser module", None, "test_generation"),
    ("What is 1234 * 5678?", None, "math"),
    ("Is this review positive or negative? 'Loved it'", None, "sentiment"),
    ("Write a haiku about the sea", None, "poetry"),
    ("I want a refund for my order #123", None, "customer_support"),
    ("Compare PostgreSQL versus MySQL for analytics", None, "comparison"),
    ("Extract the invoice number and total from this text", None, "data_extraction"),
    ("Ok", "You classify support tickets into a category label.", "classification"),
    ("Please continue.", None, "instruction_following"),
])
def test_examples(prompt: str, system: str | None, expected: str) -> None:
    assert classify(prompt, system) == expected


def test_no_text_has_no_task_type() -> None:
    assert classify("", None) is None and classify("   \n", "") is None


def test_greeting_words_inside_other_words_do_not_count() -> None:
    assert classify("this chair is high") != "greeting"


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=3000), st.one_of(st.none(), st.text(max_size=500)))
def test_any_text_gets_a_known_type_or_none(prompt: str, system: str | None) -> None:
    result = classify(prompt, system)
    assert result is None or result in TASK_CATEGORY
