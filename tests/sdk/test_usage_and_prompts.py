"""Usage conversion to the ingest convention, and the text that gets hashed."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from tokentra._prompt import extract_texts, hash_text, normalize
from tokentra._usage import merge_delta, normalize_usage

counts = st.integers(min_value=0, max_value=10**7)


@given(base=counts, read=counts, write=counts, output=counts, thinking=counts)
def test_anthropic_input_includes_cache_reads_and_writes(base: int, read: int, write: int, output: int,
                                                         thinking: int) -> None:
    thinking = min(thinking, output)  # the API guarantees thinking <= output
    raw = {"input_tokens": base, "cache_read_input_tokens": read, "cache_creation_input_tokens": write,
           "output_tokens": output, "output_tokens_details": {"thinking_tokens": thinking}}
    usage = normalize_usage("messages", raw)
    assert usage == {"input_tokens": base + read + write, "cached_tokens": read, "cache_write_tokens": write,
                     "output_tokens": output, "reasoning_tokens": thinking}
    # The ingest server refuses events whose parts exceed their totals.
    assert usage["cached_tokens"] + usage["cache_write_tokens"] <= usage["input_tokens"]


def test_openai_shapes_and_missing_details() -> None:
    assert normalize_usage("chat.completions", {"prompt_tokens": 9, "completion_tokens": 3}) == {
        "input_tokens": 9, "output_tokens": 3, "cached_tokens": 0, "cache_write_tokens": 0,
        "reasoning_tokens": 0}
    responses = {"input_tokens": 9, "output_tokens": 3, "input_tokens_details": {"cached_tokens": 4},
                 "output_tokens_details": {"reasoning_tokens": 2}}
    assert normalize_usage("responses", responses)["cached_tokens"] == 4
    assert normalize_usage("responses", None) == dict.fromkeys(
        ("input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens"), 0)
    odd = normalize_usage("chat.completions", {"prompt_tokens": True, "completion_tokens": -4})
    assert odd["input_tokens"] == odd["output_tokens"] == 0


def test_stream_delta_counts_replace_the_provisional_ones() -> None:
    start = {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 5}
    assert merge_delta(start, {"output_tokens": 42, "input_tokens": None}) == {
        "input_tokens": 10, "output_tokens": 42, "cache_read_input_tokens": 5}
    assert merge_delta(start, None) is start


def test_hash_is_sha256_of_the_normalized_text() -> None:
    assert hash_text("  a\n\tb  c ") == hashlib.sha256(b"a b c").hexdigest()
    assert hash_text(" \n ") is None and hash_text(None) is None


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Zs", "Cc")), min_size=1), min_size=1),
       st.lists(st.sampled_from([" ", "\n", "\t", "  \r\n"]), min_size=1))
def test_whitespace_does_not_change_the_hash(words: list[str], gaps: list[str]) -> None:
    spaced = "".join(word + gaps[i % len(gaps)] for i, word in enumerate(words))
    assert hash_text(spaced) == hash_text(" ".join(words)) == hash_text(normalize(spaced))


class _Part:  # content parts may be SDK model objects rather than dicts
    def __init__(self, text: str) -> None:
        self.type, self.text = "text", text


def test_extraction_handles_parts_objects_tools_and_system_roles() -> None:
    messages = [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "1",
                                      "content": [{"type": "text", "text": "42"}]}, _Part("and?")]},
    ]
    texts = extract_texts("messages", messages, [{"type": "text", "text": "sys"}])
    assert texts.system == "sys\nbe brief"
    assert texts.conversation == "user: look\nuser: 42\nand?"
    assert texts.last_user == "42\nand?"
    items = [{"type": "function_call_output", "call_id": "1", "output": "done"},
             {"role": "user", "content": "next"}]
    responses = extract_texts("responses", items, "inst")
    assert (responses.conversation, responses.system) == ("tool: done\nuser: next", "inst")


def test_messages_appended_after_the_call_do_not_change_its_hash() -> None:
    from tokentra._observe import ENDPOINTS, begin

    messages = [{"role": "user", "content": "first"}]
    call = begin("openai", ENDPOINTS["chat.completions"], {"model": "m", "messages": messages})
    messages.append({"role": "assistant", "content": "reply"})
    assert call is not None and call.to_event()["prompt_hash"] == hash_text("user: first")
