"""Derived names fit Kubernetes' 63-character label values, are stable and stay distinct."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weavergen.api.charter import PHASES
from weavergen.domain.names import MAX_LABEL_VALUE, bounded, child_name, cycle_name, label_value

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
dns_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?", fullmatch=True)


def every_name_of_a_cycle(charter: str) -> list[str]:
    cycle = cycle_name(charter, "20261203-101500")
    roles = [*PHASES, "snapshot", "writes", "workflow"]
    return [cycle, *(child_name(cycle, role) for role in roles), child_name(charter, "golden")]


def test_a_63_character_charter_gets_names_that_fit_and_say_whose_they_are() -> None:
    charter = "checkout-" + "x" * 54
    assert len(charter) == 63
    names = every_name_of_a_cycle(charter)
    assert all(len(n) <= MAX_LABEL_VALUE and DNS_LABEL.match(n) for n in names), names
    assert all(n.startswith("checkout-xxx") for n in names)
    assert names[1].endswith("-define") and names[5].endswith("-implement")
    assert len(set(names)) == len(names)


def test_short_names_are_kept_as_they_were() -> None:
    assert cycle_name("web", "20261203-101500") == "web-20261203-101500"
    assert child_name("web-20261203-101500", "implement") == "web-20261203-101500-implement"
    assert label_value("web") == "web"


@given(dns_names, st.sampled_from([*PHASES, "snapshot", "1", "golden"]))
def test_derived_names_fit_are_deterministic_and_dns_labels(base: str, role: str) -> None:
    name = child_name(base, role)
    assert len(name) <= MAX_LABEL_VALUE
    assert DNS_LABEL.match(name), name
    assert name == child_name(base, role)


@given(dns_names, dns_names)
def test_different_long_names_stay_different(first: str, second: str) -> None:
    if first != second:
        assert child_name(first, "implement") != child_name(second, "implement")


def test_a_suffix_with_no_room_is_refused() -> None:
    with pytest.raises(ValueError, match="no room"):
        bounded("web", "s" * 60)
