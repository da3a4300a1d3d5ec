"""A loopback chat server in a process of its own (as a real provider is), for benchmarks: it
streams a reply of N word pieces, D seconds apart, to every request, and prints its port.

    python -m benchmarks.chat_process N D
"""

from __future__ import annotations

import subprocess
import sys
import time

from tether.testing import ChatServer
from tether.testing.chat_server import reply


def words(n: int) -> list[str]:
    """The pieces of the reply: n words, each but the first after a space."""
    vocab = ["the", "invoice", "total", "matches", "the", "purchase", "order", "and", "the", "supplier",
             "is", "approved", "for", "payment"]
    return [(" " if i else "") + vocab[i % len(vocab)] for i in range(n)]


class ChatProcess:
    """`python -m benchmarks.chat_process` started and stopped as a context manager."""

    def __init__(self, pieces: int, delay: float) -> None:
        self.args = [str(pieces), str(delay)]
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> ChatProcess:
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.chat_process", *self.args],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        return self

    def model(self, name: str = "bench") -> str:
        """The tether model string of a model served there."""
        return f"openai-compatible:{name}@{self.url}"

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


if __name__ == "__main__":
    n, delay = int(sys.argv[1]), float(sys.argv[2])
    pieces = words(n)
    with ChatServer(default=reply("".join(pieces), chunks=pieces, chunk_delay=delay)) as chat:
        print(chat.url, flush=True)
        while True:
            time.sleep(3600)
