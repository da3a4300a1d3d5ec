"""The JSON object in a model's reply text."""

from __future__ import annotations


def json_text(text: str) -> str:
    """The JSON in a reply: code fences and prose around the object are dropped."""
    t = text.strip()
    if t.startswith("```"):
        t = t.split("\n", 1)[1] if "\n" in t else ""
        t = t.rsplit("```", 1)[0]
    start, end = t.find("{"), t.rfind("}")
    return t[start:end + 1] if 0 <= start < end else t.strip()
