"""Conversations kept out of band, so an agent's step inputs stay small however long it talks.

Runs on workers, inside the model step (or in-process outside workflows). A stored
conversation is a chain of nodes `{parent, messages, tools}`; each node is named by the
SHA-256 of its JSON (content-addressed: a retried step writes the same name), encrypted
with the worker's payload codec exactly like a Temporal payload, and kept in the payload
store of the worker's zone (the claim-check store: `TETHER_PAYLOAD_STORE`, else
`payloads` in the state folder). A model call then carries a reference plus the few new messages,
and its reply names the conversation including the reply.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from pydantic import BaseModel

from tether import _runtime
from tether.errors import ConfigError
from tether.llm._types import Message, ModelCall, ModelReply, ToolSpec

PREFIX = "transcript-"
_CACHE_SIZE = 64


class Node(BaseModel):
    """One stored piece of a conversation: messages appended to `parent` (and tools, if they change)."""

    parent: str | None = None
    messages: list[Message]
    tools: list[ToolSpec] | None = None


class Conversation(BaseModel):
    """A stored conversation read back: every message, and the tools last set along it."""

    messages: list[Message]
    tools: list[ToolSpec]


_cache: OrderedDict[str, Conversation] = OrderedDict()
_lock = threading.Lock()


def ref_of(node: Node) -> str:
    """The content address of a node (128 bits of SHA-256, hex)."""
    return hashlib.sha256(node.model_dump_json().encode()).hexdigest()[:32]


async def put(node: Node) -> str:
    """Store `node` (encrypted like a payload) and return its reference."""
    ref = ref_of(node)
    rt = _runtime.current()
    rt.blob_store().put(PREFIX + ref, await rt.seal(node))
    return ref


async def _get(ref: str) -> Node:
    rt = _runtime.current()
    store = rt.blob_store()
    try:
        raw = store.get(PREFIX + ref)
    except KeyError:
        raise ConfigError(f"stored conversation {ref} is not in the payload store {store!r}; point "
                          "TETHER_PAYLOAD_STORE at the store the agent's other workers use") from None
    node: Node = await rt.unseal(raw, Node)
    return node


async def load(ref: str) -> Conversation:
    """The whole conversation up to `ref` (walking parents; recent ones are cached per process)."""
    chain: list[Node] = []
    at: str | None = ref
    base = Conversation(messages=[], tools=[])
    while at is not None:
        with _lock:
            hit = _cache.get(at)
        if hit is not None:
            base = hit
            break
        node = await _get(at)
        chain.append(node)
        at = node.parent
    messages, tools = list(base.messages), list(base.tools)
    for node in reversed(chain):
        messages += node.messages
        tools = node.tools if node.tools is not None else tools
    full = Conversation(messages=messages, tools=tools)
    _remember(ref, full)
    return full


def _remember(ref: str, conversation: Conversation) -> None:
    with _lock:
        _cache[ref] = conversation
        _cache.move_to_end(ref)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


def reply_message(reply: ModelReply) -> Message:
    """The assistant message a reply adds to the conversation."""
    return Message(role="assistant", content=reply.text, tool_calls=reply.tool_calls or None)


async def continue_stored(call: ModelCall, ask: Callable[[ModelCall], Awaitable[ModelReply]]) -> ModelReply:
    """Answer a call that continues (or starts) a stored conversation, and store the reply.

    `call.messages` (and `call.tools`, if any) are appended to `call.transcript`; the
    model sees the whole conversation; the reply's `transcript` names it with the reply.
    """
    head = call.transcript
    if call.messages or call.tools or head is None:
        head = await put(Node(parent=head, messages=call.messages, tools=call.tools or None))
    conversation = await load(head)
    full = call.model_copy(update={"messages": conversation.messages, "tools": conversation.tools,
                                   "transcript": None, "keep_transcript": False})
    reply = await ask(full)
    node = Node(parent=head, messages=[reply_message(reply)])
    reply.transcript = await put(node)
    _remember(reply.transcript, Conversation(messages=[*conversation.messages, *node.messages],
                                             tools=conversation.tools))
    return reply
