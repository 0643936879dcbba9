"""One structured request to OpenAI or Anthropic through their own clients, in their native schema features.

OpenAI: `response_format={"type": "json_schema", "json_schema": {..., "strict": true}}`; it caches long
prompt prefixes by itself, so the static system prompt goes first. Anthropic: one tool whose
`input_schema` is the schema, forced with `tool_choice`, and `cache_control` on the system block.

Tool conversations (`ask_tools`): OpenAI function tools in strict mode with `tool_choice="required"`,
Anthropic tools with `tool_choice={"type": "any"}`; either way the model must call one of the tools.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any, cast

import anthropic
import openai
from anthropic.types import MessageParam, TextBlockParam, ToolChoiceToolParam, ToolParam
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import BaseModel

__all__ = ["AnthropicProvider", "OpenAIProvider", "ProviderFailed", "Reply", "ToolSpec", "ToolUse", "schema_name"]


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: its name, what it does, and its arguments as a pydantic model."""

    name: str
    description: str
    args: type[BaseModel]


@dataclass(frozen=True)
class ToolUse:
    """One tool call in a reply: its id (answered by id), the tool's name, and its parsed arguments."""

    id: str
    name: str
    arguments: Any  # the parsed JSON arguments; None when they are not JSON


@dataclass(frozen=True)
class Reply:
    """A provider's answer: the structured object if it sent one, its text, and the usage it billed."""

    obj: Any  # the parsed JSON answer; None when the text is not JSON
    text: str
    input_tokens: int  # every input token, cache reads and writes included (genai-prices' convention)
    output_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    served_model: str
    repair_context: Any  # what the provider needs to continue the conversation in a repair request
    tool_calls: tuple[ToolUse, ...] = ()


class ProviderFailed(Exception):
    """The provider gave no answer: an HTTP error, a broken connection or a timeout."""

    def __init__(self, status: str, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status  # usage_records.status: "error" | "timeout" | "rate_limited"
        self.code = code


def schema_name(schema: type[BaseModel]) -> str:
    """The schema's name as both APIs accept it (^[a-zA-Z0-9_-]{1,64}$)."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", schema.__name__)[:64] or "answer"


def _failure(exc: BaseException) -> ProviderFailed:
    """Classify the clients' errors (their class names are the same in both libraries)."""
    if isinstance(exc, (openai.APITimeoutError, anthropic.APITimeoutError, TimeoutError)):
        return ProviderFailed("timeout", "timeout", "the provider did not answer in time")
    if isinstance(exc, (openai.APIStatusError, anthropic.APIStatusError)):
        status = "rate_limited" if exc.status_code == 429 else "error"
        return ProviderFailed(status, f"http_{exc.status_code}", f"HTTP {exc.status_code}: {type(exc).__name__}")
    return ProviderFailed("error", "connection_error", type(exc).__name__)


_ERRORS = (openai.APIError, anthropic.APIError, TimeoutError)


class OpenAIProvider:
    name = "openai"
    endpoint = "chat.completions"

    def __init__(self, api_key: str, base_url: str | None, timeout: float) -> None:
        self.timeout = timeout
        # Retries off: a failing model moves straight to the task's fallback on another provider.
        self.client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    def first_messages(self, prompt: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": prompt}]

    async def ask(self, model: str, system: str, messages: list[dict[str, Any]], schema: type[BaseModel],
                  max_tokens: int, cache_key: str) -> Reply:
        strict = openai.pydantic_function_tool(schema)["function"]["parameters"]
        response_format: ResponseFormatJSONSchema = {
            "type": "json_schema", "json_schema": {"name": schema_name(schema), "schema": strict, "strict": True}}
        # The conversation is built by first_messages/repair_messages in OpenAI's message shape.
        chat = cast(list[ChatCompletionMessageParam], [{"role": "system", "content": system}, *messages])
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.client.chat.completions.create(
                    model=model, messages=chat, response_format=response_format,
                    max_completion_tokens=max_tokens, prompt_cache_key=cache_key)
        except _ERRORS as exc:
            raise _failure(exc) from None
        message = response.choices[0].message if response.choices else None
        text = (message.content or message.refusal or "") if message else ""
        usage = response.usage
        details = usage.prompt_tokens_details if usage else None
        return Reply(
            obj=_loads(text), text=text, input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            cached_tokens=(details.cached_tokens or 0) if details else 0,
            cache_write_tokens=(getattr(details, "cache_write_tokens", None) or 0) if details else 0,
            served_model=response.model, repair_context=text)

    def repair_messages(self, messages: list[dict[str, Any]], reply: Reply, problem: str) -> list[dict[str, Any]]:
        return [*messages, {"role": "assistant", "content": reply.text}, {"role": "user", "content": problem}]

    async def ask_tools(self, model: str, system: str, messages: list[dict[str, Any]], tools: list[ToolSpec],
                        max_tokens: int, cache_key: str) -> Reply:
        specs: list[ChatCompletionToolParam] = [
            {"type": "function", "function": {
                "name": t.name, "description": t.description, "strict": True,
                "parameters": openai.pydantic_function_tool(t.args)["function"]["parameters"]}}
            for t in tools]
        chat = cast(list[ChatCompletionMessageParam], [{"role": "system", "content": system}, *messages])
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.client.chat.completions.create(
                    model=model, messages=chat, tools=specs, tool_choice="required",
                    max_completion_tokens=max_tokens, prompt_cache_key=cache_key)
        except _ERRORS as exc:
            raise _failure(exc) from None
        message = response.choices[0].message if response.choices else None
        text = (message.content or message.refusal or "") if message else ""
        raw_calls = [c for c in (message.tool_calls or []) if c.type == "function"] if message else []
        uses = tuple(ToolUse(c.id, c.function.name, _loads(c.function.arguments)) for c in raw_calls)
        # The assistant turn as the API wants it back: every tool call, to be answered by its id.
        turn: dict[str, Any] = {"role": "assistant", "content": text or None}
        if raw_calls:
            turn["tool_calls"] = [{"id": c.id, "type": "function",
                                   "function": {"name": c.function.name, "arguments": c.function.arguments}}
                                  for c in raw_calls]
        usage = response.usage
        details = usage.prompt_tokens_details if usage else None
        return Reply(
            obj=None, text=text, input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            cached_tokens=(details.cached_tokens or 0) if details else 0,
            cache_write_tokens=(getattr(details, "cache_write_tokens", None) or 0) if details else 0,
            served_model=response.model, repair_context=turn, tool_calls=uses)

    def tool_messages(self, messages: list[dict[str, Any]], reply: Reply, results: list[tuple[str, str, bool]],
                      note: str | None) -> list[dict[str, Any]]:
        """The conversation continued: the reply, one tool message per call (id, content, is_error), a note."""
        out = [*messages, reply.repair_context]
        out += [{"role": "tool", "tool_call_id": call_id, "content": ("ERROR: " if failed else "") + content}
                for call_id, content, failed in results]
        if note:
            out.append({"role": "user", "content": note})
        return out

    async def embed(self, model: str, texts: list[str], dims: int | None) -> tuple[list[list[float]], int, str]:
        """Vectors for `texts` (in order), the input tokens billed and the model that served them."""
        extra: dict[str, Any] = {"dimensions": dims} if dims is not None else {}
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.client.embeddings.create(model=model, input=texts, **extra)
        except _ERRORS as exc:
            raise _failure(exc) from None
        vectors = [item.embedding for item in sorted(response.data, key=lambda item: item.index)]
        return vectors, response.usage.prompt_tokens if response.usage else 0, response.model

    async def aclose(self) -> None:
        await self.client.close()


class AnthropicProvider:
    name = "anthropic"
    endpoint = "messages"

    def __init__(self, api_key: str, base_url: str | None, timeout: float) -> None:
        self.timeout = timeout
        self.client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    def first_messages(self, prompt: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": prompt}]

    async def ask(self, model: str, system: str, messages: list[dict[str, Any]], schema: type[BaseModel],
                  max_tokens: int, cache_key: str) -> Reply:
        name = schema_name(schema)
        tool: ToolParam = {"name": name, "description": f"Record the answer as a {name} object.",
                           "input_schema": anthropic.transform_schema(schema)}
        system_blocks: list[TextBlockParam] = [
            {"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
        tool_choice: ToolChoiceToolParam = {"type": "tool", "name": name}
        # The conversation is built by first_messages/repair_messages in Anthropic's message shape.
        conversation = cast(list[MessageParam], messages)
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.client.messages.create(
                    model=model, max_tokens=max_tokens, system=system_blocks,
                    messages=conversation, tools=[tool], tool_choice=tool_choice)
        except _ERRORS as exc:
            raise _failure(exc) from None
        call = next((b for b in response.content if b.type == "tool_use" and b.name == name), None)
        if call is not None:
            obj, text = call.input, json.dumps(call.input)
            context: Any = {"type": "tool_use", "id": call.id, "name": name, "input": call.input}
        else:  # prose instead of the forced tool call
            text = "".join(getattr(b, "text", "") for b in response.content)
            obj, context = _loads(text), {"type": "text", "text": text or "(no answer)"}
        usage = response.usage
        read, write = usage.cache_read_input_tokens or 0, usage.cache_creation_input_tokens or 0
        return Reply(obj=obj, text=text, input_tokens=usage.input_tokens + read + write,
                     output_tokens=usage.output_tokens, cached_tokens=read, cache_write_tokens=write,
                     served_model=response.model, repair_context=context)

    def repair_messages(self, messages: list[dict[str, Any]], reply: Reply, problem: str) -> list[dict[str, Any]]:
        block = reply.repair_context
        if block["type"] == "tool_use":  # a tool call must be answered by its tool_result
            answer: list[dict[str, Any]] = [{"type": "tool_result", "tool_use_id": block["id"], "is_error": True,
                                             "content": problem}]
        else:
            answer = [{"type": "text", "text": problem}]
        return [*messages, {"role": "assistant", "content": [block]}, {"role": "user", "content": answer}]

    async def ask_tools(self, model: str, system: str, messages: list[dict[str, Any]], tools: list[ToolSpec],
                        max_tokens: int, cache_key: str) -> Reply:
        specs: list[ToolParam] = [{"name": t.name, "description": t.description,
                                   "input_schema": anthropic.transform_schema(t.args)} for t in tools]
        system_blocks: list[TextBlockParam] = [
            {"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
        conversation = cast(list[MessageParam], messages)
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.client.messages.create(
                    model=model, max_tokens=max_tokens, system=system_blocks, messages=conversation,
                    tools=specs, tool_choice={"type": "any"})
        except _ERRORS as exc:
            raise _failure(exc) from None
        blocks: list[dict[str, Any]] = []
        uses: list[ToolUse] = []
        for b in response.content:
            if b.type == "tool_use":
                blocks.append({"type": "tool_use", "id": b.id, "name": b.name, "input": b.input})
                uses.append(ToolUse(b.id, b.name, b.input))
            elif b.type == "text" and b.text:
                blocks.append({"type": "text", "text": b.text})
        text = "".join(b["text"] for b in blocks if b["type"] == "text")
        usage = response.usage
        read, write = usage.cache_read_input_tokens or 0, usage.cache_creation_input_tokens or 0
        return Reply(obj=None, text=text, input_tokens=usage.input_tokens + read + write,
                     output_tokens=usage.output_tokens, cached_tokens=read, cache_write_tokens=write,
                     served_model=response.model,
                     repair_context={"role": "assistant", "content": blocks or [{"type": "text", "text": "(none)"}]},
                     tool_calls=tuple(uses))

    def tool_messages(self, messages: list[dict[str, Any]], reply: Reply, results: list[tuple[str, str, bool]],
                      note: str | None) -> list[dict[str, Any]]:
        """The conversation continued: the reply, then one user turn holding a tool_result per call and a note."""
        content: list[dict[str, Any]] = [
            {"type": "tool_result", "tool_use_id": call_id, "content": text, "is_error": failed}
            for call_id, text, failed in results]
        if note:
            content.append({"type": "text", "text": note})
        return [*messages, reply.repair_context, {"role": "user", "content": content}]

    async def aclose(self) -> None:
        await self.client.close()


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
