"""HTML forms generated from JSON schemas (a task's answer, a workflow's input), and back.

Runs in the Studio server. `fields` turns a schema into a tree of `Field`s the templates
render; `parse` turns the submitted form back into JSON-like data for server-side
validation. Supported: strings, numbers, integers, booleans, enums and literals, nested
objects, optional values, lists of scalars (one per line), tagged unions (a select plus
one group per variant); anything else is edited as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ROOT = "f"
"""Form key of the root value; nested fields are `f.address.city`."""
_MISSING: Any = object()


@dataclass
class Field:
    """One control (or group of controls) of a generated form.

    Attributes:
        name: The form key (`f.address.city`).
        path: The value's location as validation errors name it (`address.city`; "" for the root).
        label: What the person reads.
        kind: text, textarea, integer, number, checkbox, select, lines, json, group or union.
        required: Whether the value must be given.
        description: Help text from the schema.
        value: The value to show (the submitted one after an error, else the schema default).
        options: (form value, label) pairs of a select.
        children: Nested fields of a group; one group per variant of a union.
        error: The message to show next to the field.
        attrs: Extra input attributes (min, max, step, minlength, maxlength).
    """

    name: str
    path: str
    label: str
    kind: str
    required: bool = False
    description: str | None = None
    value: Any = None
    options: list[tuple[str, str]] = field(default_factory=list)
    children: list[Field] = field(default_factory=list)
    error: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    tag: str | None = None  # a union's discriminator property

    @property
    def help(self) -> str:
        """Help text: the schema's description plus what the control expects."""
        parts = [self.description.rstrip(".") + "."] if self.description else []
        if self.kind == "lines":
            parts.append("One per line.")
        elif self.kind == "json":
            parts.append("As JSON.")
        for attr, words in (("min", "At least"), ("max", "At most"), ("gt", "More than"), ("lt", "Less than")):
            if self.attrs.get(attr) is not None:
                parts.append(f"{words} {self.attrs[attr]}.")
        return " ".join(parts)

    @property
    def select_name(self) -> str:
        """The form key of a union's variant select (`f.decision.action`)."""
        return f"{self.name}.{self.tag}"

    def is_checked(self) -> bool:
        """For checkboxes: whether the box is ticked."""
        return self.value is True or self.value in ("true", "on", "1")


def fields(schema: dict[str, Any], *, values: Any = _MISSING,
           errors: Mapping[str, str] | None = None) -> list[Field]:
    """The form fields of `schema`: the properties of an object, else one field for the value.

    Args:
        schema: A JSON schema (with `$defs` if it has references).
        values: Values to show (e.g. what was submitted), shaped like the schema's data.
        errors: Messages by path (`address.city`), shown next to their fields.

    Example:
        >>> [f.name for f in fields(Approval.model_json_schema())]
        ['f.approved', 'f.amount', 'f.comment']
    """
    node = _resolve(schema, schema)
    errors = dict(errors or {})
    if _is_object(node):
        out = _object_children(node, schema, ROOT, "", values, errors)
    else:
        out = [_field(node, schema, ROOT, "", node.get("title") or "Answer", True, values, errors)]
    leftover = [f"{k or 'answer'}: {v}" for k, v in errors.items() if not _claimed(out, k)]
    if leftover:  # an error whose field has no control of its own: show it at the top
        out.insert(0, Field(name="", path="", label="", kind="note", error="; ".join(leftover)))
    return out


def _claimed(items: list[Field], path: str) -> bool:
    for f in items:
        if f.path == path and f.error is not None:
            return True
        if _claimed(f.children, path):
            return True
    return False


def _resolve(node: Any, root: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = root.get("$defs", {}).get(ref.rsplit("/", 1)[1], {})
        merged = {**_resolve(target, root), **{k: v for k, v in node.items() if k != "$ref"}}
        return merged
    if "allOf" in node and len(node["allOf"]) == 1:  # pydantic wraps referenced defaults this way
        return {**_resolve(node["allOf"][0], root), **{k: v for k, v in node.items() if k != "allOf"}}
    return node


def _is_object(node: dict[str, Any]) -> bool:
    return node.get("type") == "object" and isinstance(node.get("properties"), dict)


def _object_children(node: dict[str, Any], root: dict[str, Any], name: str, path: str, values: Any,
                     errors: dict[str, str]) -> list[Field]:
    required = set(node.get("required", []))
    out = []
    for key, prop in node["properties"].items():
        sub = values.get(key, _MISSING) if isinstance(values, dict) else _MISSING
        label = _resolve(prop, root).get("title") or _humane(key)
        out.append(_field(prop, root, f"{name}.{key}", _join(path, key), label, key in required, sub, errors))
    return out


def _humane(key: str) -> str:
    """A property name as a label ("due_date" -> "Due date")."""
    return key.replace("_", " ").strip().capitalize() or key


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _field(raw: dict[str, Any], root: dict[str, Any], name: str, path: str, label: str, required: bool,
           value: Any, errors: dict[str, str]) -> Field:
    node = _resolve(raw, root)
    options = node.get("anyOf") or node.get("oneOf")
    if options:
        variants = [_resolve(o, root) for o in options]
        non_null = [v for v in variants if v.get("type") != "null"]
        if len(non_null) == 1 and len(variants) == 2:  # Optional[X]
            inner = {**non_null[0], **{k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}}
            return _field(inner, root, name, path, label, False, value, errors)
        tag = _tag(node, non_null)
        if tag:
            return _union(non_null, root, name, path, label, tag, value, errors)
        return _base(node, name, path, label, required, "json", value, errors)
    if value is _MISSING:
        value = node.get("default", _MISSING)
    if "const" in node:
        return _base(node, name, path, label, required, "select", value, errors,
                     options=[(json.dumps(node["const"]), str(node["const"]))])
    if "enum" in node:
        return _base(node, name, path, label, required, "select", value, errors,
                     options=[(json.dumps(v), str(v)) for v in node["enum"]])
    kind = node.get("type")
    if _is_object(node):
        group = _base(node, name, path, label, required, "group", None, errors)
        group.children = _object_children(node, root, name, path, value, errors)
        return group
    if kind == "array" and _scalar_items(node, root):
        return _base(node, name, path, label, required, "lines", value, errors)
    if kind in ("string", "integer", "number", "boolean"):
        return _scalar(node, name, path, label, required, kind, value, errors)
    return _base(node, name, path, label, required, "json", value, errors)


def _scalar(node: dict[str, Any], name: str, path: str, label: str, required: bool, kind: str,
            value: Any, errors: dict[str, str]) -> Field:
    if kind == "boolean":
        return _base(node, name, path, label, required, "checkbox", value, errors)
    attrs: dict[str, Any] = {}
    for key, attr in (("minimum", "min"), ("maximum", "max"), ("exclusiveMinimum", "gt"),
                      ("exclusiveMaximum", "lt"), ("minLength", "minlength"), ("maxLength", "maxlength")):
        if key in node:
            attrs[attr] = node[key]
    if kind == "integer":
        attrs["step"] = 1
    elif kind == "number":
        attrs["step"] = "any"
    control = kind if kind in ("integer", "number") else "text"
    if kind == "string" and (node.get("maxLength", 0) > 200 or node.get("format") == "textarea"):
        control = "textarea"
    return _base(node, name, path, label, required, control, value, errors, attrs=attrs)


def _base(node: dict[str, Any], name: str, path: str, label: str, required: bool, kind: str, value: Any,
          errors: dict[str, str], *, options: list[tuple[str, str]] | None = None,
          attrs: dict[str, Any] | None = None) -> Field:
    return Field(name=name, path=path, label=str(label), kind=kind, required=required,
                 description=node.get("description"), value=_shown(kind, value),
                 options=options or [], error=errors.get(path), attrs=attrs or {})


def _shown(kind: str, value: Any) -> Any:
    if value is _MISSING or value is None:
        return "" if kind != "checkbox" else False
    if kind == "select":
        return json.dumps(value)
    if kind == "lines":
        return "\n".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if kind == "json":
        return value if isinstance(value, str) else json.dumps(value, indent=2)
    return value


def _scalar_items(node: dict[str, Any], root: dict[str, Any]) -> bool:
    items = _resolve(node.get("items", {}), root)
    return items.get("type") in ("string", "integer", "number") and "enum" not in items


def _tag(node: dict[str, Any], variants: list[dict[str, Any]]) -> str | None:
    tag = (node.get("discriminator") or {}).get("propertyName")
    if tag and all("const" in v.get("properties", {}).get(tag, {}) for v in variants):
        return str(tag)
    return None


def _union(variants: list[dict[str, Any]], root: dict[str, Any], name: str, path: str, label: str,
           tag: str, value: Any, errors: dict[str, str]) -> Field:
    consts = [v["properties"][tag]["const"] for v in variants]
    chosen = value.get(tag) if isinstance(value, dict) else None
    union = Field(name=name, path=path, label=str(label), kind="union", required=True,
                  value=json.dumps(chosen if chosen in consts else consts[0]), tag=tag,
                  options=[(json.dumps(c), str(c)) for c in consts],
                  error=errors.get(_join(path, tag)) or errors.get(path))
    for i, variant in enumerate(variants):
        props = {k: v for k, v in variant["properties"].items() if k != tag}
        mine = value if isinstance(value, dict) and value.get(tag) == consts[i] else _MISSING
        node = {**variant, "properties": props}
        group = Field(name=f"{name}~{i}", path=path, label=str(consts[i]), kind="group",
                      value=json.dumps(consts[i]),
                      children=_object_children(node, root, f"{name}~{i}", path, mine,
                                                errors if mine is not _MISSING else {}))
        union.children.append(group)
    return union


# ---- parsing a submitted form -----------------------------------------------------------------


def parse(schema: dict[str, Any], form: Mapping[str, str]) -> tuple[Any, dict[str, str]]:
    """The JSON-like value a submitted form describes, and messages for fields that cannot be read.

    Type checks beyond reading (ranges, required fields, enums) are left to the real
    validator on the server (the run's own validation of an answer, the workflow's input type).

    Returns:
        (value, errors by path). Unset optional fields are left out so defaults apply.
    """
    errors: dict[str, str] = {}
    items = fields(schema)
    if len(items) == 1 and items[0].name == ROOT:
        value = _read(items[0], form, errors)
        return (None if value is _MISSING else value), errors
    return _read_children(items, form, errors), errors


def _read_children(items: list[Field], form: Mapping[str, str], errors: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in items:
        got = _read(f, form, errors)
        if got is not _MISSING:
            out[f.name.rsplit(".", 1)[-1]] = got
    return out


def _read(f: Field, form: Mapping[str, str], errors: dict[str, str]) -> Any:
    if f.kind == "group":
        return _read_children(f.children, form, errors)
    if f.kind == "union":
        return _read_union(f, form, errors)
    if f.kind == "checkbox":
        return f.name in form and form[f.name] not in ("", "false", "off", "0")
    raw = form.get(f.name, "")
    if raw.strip() == "":
        return _MISSING  # left empty: the default applies, or the validator names the missing field
    try:
        return _convert(f, raw)
    except ValueError as exc:
        errors[f.path] = str(exc)
        return _MISSING


def _read_union(f: Field, form: Mapping[str, str], errors: dict[str, str]) -> Any:
    raw = form.get(f.select_name, f.options[0][0] if f.options else "null")
    try:
        chosen = json.loads(raw)
    except ValueError:
        errors[f.path] = "choose one of the options"
        return _MISSING
    for group in f.children:
        if group.value == json.dumps(chosen):
            return {f.tag or "": chosen, **_read_children(group.children, form, errors)}
    errors[f.path] = f"choose one of: {', '.join(label for _, label in f.options)}"
    return _MISSING


def _convert(f: Field, raw: str) -> Any:
    if f.kind == "integer":
        try:
            return int(raw.strip())
        except ValueError:
            raise ValueError(f"enter a whole number, not {raw.strip()!r}") from None
    if f.kind == "number":
        try:
            number = float(raw.strip())
        except ValueError:
            raise ValueError(f"enter a number, not {raw.strip()!r}") from None
        return int(number) if number.is_integer() and "." not in raw and "e" not in raw.lower() else number
    if f.kind == "select":
        try:
            return json.loads(raw)
        except ValueError:
            raise ValueError("choose one of the options") from None
    if f.kind == "lines":
        return [line.strip() for line in raw.splitlines() if line.strip()]
    if f.kind == "json":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    return raw


def submitted_values(schema: dict[str, Any], form: Mapping[str, str]) -> Any:
    """What the person typed, shaped like the schema's data, to fill the form again after an error.

    Unreadable entries (e.g. "abc" in a number field) are kept as typed.
    """
    items = fields(schema)
    if len(items) == 1 and items[0].name == ROOT:
        return _raw(items[0], form)
    return {f.name.rsplit(".", 1)[-1]: _raw(f, form) for f in items}


def _raw(f: Field, form: Mapping[str, str]) -> Any:
    if f.kind == "group":
        return {c.name.rsplit(".", 1)[-1]: _raw(c, form) for c in f.children}
    if f.kind == "union":
        try:
            chosen = json.loads(form.get(f.select_name, ""))
        except ValueError:
            return _MISSING
        for group in f.children:
            if group.value == json.dumps(chosen):
                return {f.tag or "": chosen, **{c.name.rsplit(".", 1)[-1]: _raw(c, form) for c in group.children}}
        return _MISSING
    if f.kind == "checkbox":
        return f.name in form
    if f.kind == "lines":
        return [line for line in form.get(f.name, "").splitlines()]
    if f.kind == "select":
        try:
            return json.loads(form.get(f.name, ""))
        except ValueError:
            return _MISSING
    return form.get(f.name, _MISSING)
