"""The llama.cpp process: one local model, loaded once, answering chat requests over a pipe.

Runs as a child process of a worker, started by `_local.py` as a script (it imports nothing of
tether): native inference lives here so that a crash inside libllama ends this process and
fails one model call, never the worker. One JSON request per line on stdin, one JSON reply per
line on the original stdout; whatever llama.cpp prints goes to stderr, which the worker reads.
The process ends when stdin closes (the worker stopped or died).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any, TextIO


def main() -> None:
    """Load the model named on the command line, then answer requests until stdin closes."""
    # Ctrl-C reaches the whole process group: the worker decides when this process stops
    # (it closes stdin), so a worker shutting down gracefully can still finish its calls
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # native code printing to stdout must not corrupt the reply stream
    sys.stdout = sys.stderr
    settings = json.loads(sys.argv[1])
    try:
        llama = _open(settings)
    except Exception as exc:
        _send(replies, {"error": f"{type(exc).__name__}: {exc}", "kind": "load"})
        return
    _send(replies, {"ready": True})
    for line in sys.stdin:
        _send(replies, answer(llama, json.loads(line), emit=lambda piece: _send(replies, {"delta": piece})))


def _open(settings: dict[str, Any]) -> Any:
    import llama_cpp

    return llama_cpp.Llama(verbose=False, **settings)


def answer(llama: Any, request: dict[str, Any], emit: Any = None) -> dict[str, Any]:
    """Reply to one request: `{"ok": completion}` or `{"error": message, "kind": ...}`. With
    `"stream": true`, the reply's text is first handed to `emit` piece by piece as it is written."""
    kwargs = request["kwargs"]
    if request.get("stream") and emit is not None:
        kwargs["logits_processor"] = _pieces_to(llama, emit)
    try:
        if request.get("schema") is not None:
            grammar = _grammar(llama, request["schema"])
            if grammar is None:
                return {"error": "llama.cpp could not parse the grammar built from the output schema",
                        "kind": "grammar"}
            kwargs["grammar"] = grammar
        return {"ok": llama.create_chat_completion(**kwargs)}
    except ValueError as exc:  # llama.cpp's way of refusing a request, e.g. a prompt over the context
        return {"error": str(exc), "kind": "refused"}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}", "kind": "failed"}


def _pieces_to(llama: Any, emit: Any) -> Any:
    """A logits processor that changes nothing: llama.cpp calls it before sampling each token
    with the tokens so far, so it sees each generated token and emits its text; the result is
    computed as usual (the last token's text comes with the result)."""
    import codecs

    from llama_cpp import LogitsProcessorList

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span tokens
    seen: list[int] = []

    def watch(tokens: Any, logits: Any) -> Any:
        if not seen:
            seen.append(len(tokens))  # the prompt: generated tokens come after it
        elif len(tokens) > seen[-1]:
            text = decoder.decode(llama.detokenize(list(tokens[seen[-1]:])))
            seen.append(len(tokens))
            if text:
                emit(text)
        return logits

    return LogitsProcessorList([watch])


def _grammar(llama: Any, schema: dict[str, Any]) -> Any:
    """The grammar for `schema`, or None when llama.cpp cannot parse it.

    llama-cpp-python hands grammar text to llama.cpp unchecked and dereferences the null
    sampler llama.cpp returns for text it cannot parse: parse it here first.
    """
    from llama_cpp import llama_cpp as native
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar, json_schema_to_gbnf

    try:
        text = json_schema_to_gbnf(json.dumps(schema))
    except Exception:  # what llama-cpp-python does for a schema it cannot convert: any JSON
        text = JSON_GBNF
    vocab = getattr(getattr(llama, "_model", None), "vocab", None)
    if vocab is not None:  # (llama-cpp-python internals: skip the check rather than fail every call)
        sampler = native.llama_sampler_init_grammar(vocab, text.encode("utf-8"), b"root")
        if not sampler:
            return None
        native.llama_sampler_free(sampler)
    return LlamaGrammar.from_string(text, verbose=False)


def _send(out: TextIO, reply: dict[str, Any]) -> None:
    out.write(json.dumps(reply) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
