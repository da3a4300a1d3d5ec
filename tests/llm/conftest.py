"""Fixtures for the LLM tests: a scripted OpenAI-compatible server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tether.testing import ChatServer


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    """A real HTTP server on 127.0.0.1 speaking the chat-completions API from a script."""
    with ChatServer() as server:
        yield server
