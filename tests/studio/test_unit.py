"""Server-free tests of Studio's parts: forms from JSON schemas and back, rendering of values with
sensitive handles, SVG charts, redirect targets."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, TypeAdapter

from tether.escalation import escalation_schema
from tether.studio import charts, forms, render
from tether.studio.security import safe_next


class Address(BaseModel):
    city: str
    zip: int | None = None


class Answer(BaseModel):
    approved: bool
    amount: int = Field(ge=0, description="In EUR")
    level: Literal["low", "high"] = "low"
    ratio: float = 0.5
    address: Address
    tags: list[str] = []
    extra: dict[str, int] | None = None


SCHEMA = Answer.model_json_schema()


def _flat(items: list[forms.Field]) -> dict[str, forms.Field]:
    out = {}
    for f in items:
        out[f.name] = f
        out.update(_flat(f.children))
    return out


def test_fields_follow_the_schema_types_nesting_and_requirements() -> None:
    got = _flat(forms.fields(SCHEMA))
    kinds = {name: (f.kind, f.required) for name, f in got.items()}
    assert kinds == {
        "f.approved": ("checkbox", True), "f.amount": ("integer", True), "f.level": ("select", False),
        "f.ratio": ("number", False), "f.address": ("group", True), "f.address.city": ("text", True),
        "f.address.zip": ("integer", False), "f.tags": ("lines", False), "f.extra": ("json", False),
    }
    assert got["f.level"].options == [('"low"', "low"), ('"high"', "high")] and got["f.level"].value == '"low"'
    assert got["f.amount"].help == "In EUR. At least 0."
    assert got["f.address.city"].path == "address.city"


def test_a_submitted_form_parses_back_to_data_the_model_accepts() -> None:
    form = {"f.approved": "true", "f.amount": "12", "f.level": '"high"', "f.ratio": "0.25",
            "f.address.city": "Lyon", "f.address.zip": "", "f.tags": "a\n\n b \n", "f.extra": '{"x": 1}'}
    value, errors = forms.parse(SCHEMA, form)
    assert errors == {}
    assert value == {"approved": True, "amount": 12, "level": "high", "ratio": 0.25, "address": {"city": "Lyon"},
                     "tags": ["a", "b"], "extra": {"x": 1}}
    assert Answer.model_validate(value).address.zip is None


def test_unreadable_entries_are_named_and_kept_as_typed() -> None:
    form = {"f.amount": "twelve", "f.ratio": "1,5", "f.address.city": "", "f.extra": "{nope"}
    value, errors = forms.parse(SCHEMA, form)
    assert errors == {"amount": "enter a whole number, not 'twelve'", "ratio": "enter a number, not '1,5'",
                      "extra": "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"}
    assert value["approved"] is False and "address" in value and "city" not in value["address"]
    shown = _flat(forms.fields(SCHEMA, values=forms.submitted_values(SCHEMA, form),
                               errors={**errors, "address.city": "Field required", "nowhere": "odd"}))
    assert shown["f.amount"].value == "twelve" and shown["f.amount"].error == "enter a whole number, not 'twelve'"
    assert shown["f.address.city"].error == "Field required"
    assert shown[""].kind == "note" and shown[""].error == "nowhere: odd"  # an error without a field of its own


def test_scalar_and_tagged_union_answers() -> None:
    assert forms.parse(TypeAdapter(bool).json_schema(), {"f": "true"}) == (True, {})
    assert forms.parse(TypeAdapter(bool).json_schema(), {}) == (False, {})
    assert forms.parse(TypeAdapter(str).json_schema(), {"f": "yes"}) == ("yes", {})
    schema = TypeAdapter(escalation_schema(int, can_retry=True)).json_schema()
    (union,) = forms.fields(schema)
    assert union.kind == "union" and [label for _, label in union.options] == ["retry", "use", "fail"]
    assert [c.name for g in union.children for c in g.children] == ["f~1.value", "f~2.reason"]
    adapter = TypeAdapter(escalation_schema(int, can_retry=True))
    for form, expected in (({"f.action": '"retry"'}, {"action": "retry"}),
                           ({"f.action": '"use"', "f~1.value": "7"}, {"action": "use", "value": 7}),
                           ({"f.action": '"fail"', "f~2.reason": "no"}, {"action": "fail", "reason": "no"})):
        value, errors = forms.parse(schema, form)
        assert (value, errors) == (expected, {})
        adapter.validate_python(value)


def test_sensitive_handles_render_as_badges_never_as_values() -> None:
    handle = {"kind": "tether.sensitive", "zone": "vault", "id": "ab" * 8, "label": "ssn", "preview": "***-6789"}
    html = str(render.json_html({"customer": {"ssn": handle, "note": "<b>hi</b>"}}))
    assert 'class="handle"' in html and "ssn@vault ***-6789" in html and "abababab" not in html
    assert "&lt;b&gt;hi&lt;/b&gt;" in html and "<b>hi" not in html
    text = str(render.text_html(f"Customer <<sensitive:ssn@vault/{'cd' * 8} ***-6789>> asked <x>"))
    assert text.startswith("Customer <span class=\"handle\"") and "cdcdcdcd" not in text and "&lt;x&gt;" in text


def test_filters_for_people() -> None:
    assert [render.usd(x) for x in (None, 0, 0.00042, 12.5)] == ["-", "$0", "$0.00042", "$12.50"]
    assert [render.secs(x) for x in (0.0004, 0.25, 2.5)] == ["0.4 ms", "250 ms", "2.50 s"]
    assert render.pct(1 / 3) == "33.3%"
    assert render.status_class("failed") == "bad" and render.status_class("weird") == "muted"


def test_charts_are_plain_svg_with_escaped_labels() -> None:
    svg = str(charts.bars([charts.Bar("<step>", [0.5, 1.0])], series=["p50", "p95"], fmt=render.secs))
    assert svg.startswith("<svg") and svg.count("<rect") == 4 and "&lt;step&gt;" in svg and "<step>" not in svg
    cols = str(charts.columns(["2025-01-01", "2025-01-02"], {"wf": [0.0, 2.0]}, fmt=render.usd))
    assert "$2" in cols and cols.count("<rect") == 2  # the empty day draws nothing but its label; one legend key
    assert str(charts.bars([], series=["x"], fmt=str)) == ""


def test_login_redirects_stay_on_this_site() -> None:
    assert safe_next("/runs?status=failed") == "/runs?status=failed"
    for bad in (None, "", "https://evil.example/", "//evil.example", "/\\evil.example", "runs"):
        assert safe_next(bad) == "/runs"
