"""Tether's errors cross the activity boundary as data and come back as their own classes."""

from __future__ import annotations

import tether
from tether.errors import error_data, error_from_data


def test_errors_round_trip_with_their_typed_fields() -> None:
    blocked = tether.EgressBlocked(label="ssn", zone="vault", destination="openai:gpt-4.1")
    back = error_from_data(error_data(blocked))
    assert isinstance(back, tether.EgressBlocked) and str(back) == str(blocked)
    assert (back.label, back.zone, back.destination) == ("ssn", "vault", "openai:gpt-4.1")
    model = tether.ModelError("m: HTTP 429: slow down", model="m", status=429, retry_after=2.5)
    again = error_from_data(error_data(model))
    assert isinstance(again, tether.ModelError) and (again.status, again.retry_after) == (429, 2.5)


def test_only_tethers_own_classes_are_rebuilt() -> None:
    assert error_from_data({"kind": "SystemExit", "message": "x"}) is None
    assert error_from_data({"kind": "NotAnError", "message": "x"}) is None
    assert error_from_data("EgressBlocked") is None
