"""Charter shards: the port of the Collector's ring gives the exporter's own answers, and the
operator's shard settings, ownership and finalizers follow from it."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from weavergen.config import ConfigError, OperatorConfig
from weavergen.domain.shards import (
    FINALIZER,
    HashRing,
    Shards,
    orphaned_finalizers,
    service_routing_key,
    shard_finalizer,
)

# -- the exporter's answers ---------------------------------------------------------------------
# Written by `bash hack/ring-reference.sh`: the loadbalancing exporter v0.158.0's own code
# (routingIdentifiersFromTraces with routing_key: service, newHashRing, endpointFor), run on
# the endpoint sets and services below. Each row: the endpoints, the ring's item count, the
# SHA-256 of its items ("<position> <endpoint>\n" each, in order) and, per service, the index
# of the endpoint its spans go to.

SERVICES = [
    "checkout",
    "web",
    "cart",
    "payments",
    "café",
    "a",
    "svc|pipe",
    "s" * 253,
    *(f"svc-{i}" for i in range(24)),
]


def stateful_set(n: int, suffix: str) -> list[str]:
    return [
        f"weavergen-operator-{i}.weavergen-operator-shards.weavergen-system.svc{suffix}"
        for i in range(n)
    ]


ONE = ["endpoint-1"]
PAIR = ["endpoint-1", "endpoint-2"]
LOOPBACK = ["127.0.0.1:4317", "127.0.0.1:4318"]
STATEFULSET_2 = stateful_set(2, ":4317")
STATEFULSET_3 = stateful_set(3, ":4317")
STATEFULSET_2_NO_PORT = stateful_set(2, "")
STATEFULSET_5_FQDN = stateful_set(5, ".cluster.local:4317")
# 140,000 candidates for 131,071 positions: collisions, probes and skipped points.
MANY_700 = [f"10.0.{i // 256}.{i % 256}:4317" for i in range(700)]

GO_REFERENCE = [
    (ONE, 200, "fc138b09912d9b4b5a0ae7b0264fb89a6b3da851b999fd5ae71d2860029efb40",
     "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"),
    (PAIR, 400, "b26d8bedd027292a789e35f2a42a59f2bb886fbbe4e2fe7378b41e0f5eee7ce2",
     "0 0 0 1 0 0 1 1 1 0 1 1 1 0 0 0 0 1 1 1 0 0 1 1 1 1 1 0 0 0 1 0"),
    (LOOPBACK, 400, "652bad16e335863c07fc77d5c50fb1c31ca4c8fbb5035bae33eee2afac284e8b",
     "1 0 0 1 0 1 0 1 0 1 0 0 0 0 0 1 1 0 1 0 0 0 1 0 0 1 0 1 0 1 1 1"),
    (STATEFULSET_2, 400, "91f1efb5d0537b04c5cb6eab878d0f25802a1b48c5881ee334569a8b099e10ac",
     "0 0 1 1 0 0 0 0 1 0 1 0 0 0 0 1 1 0 1 0 1 0 1 0 0 1 1 0 1 1 1 1"),
    (STATEFULSET_3, 600, "358d2a33a925f7efd99bfb7107b8653f4bc1d18af6202b846978e318264c6470",
     "0 0 1 1 0 0 0 2 1 2 1 0 2 0 0 1 1 2 1 0 1 0 1 2 2 2 1 2 1 1 2 1"),
    (STATEFULSET_2_NO_PORT, 400,
     "ef43f2a340b950b71dc23745cf71b6931d8ac244239d539908b5819a041275ad",
     "0 0 0 1 1 0 1 0 1 0 1 1 1 1 0 0 0 0 0 0 0 0 1 1 0 0 1 0 1 0 0 1"),
    (STATEFULSET_5_FQDN, 1000, "3114c2c67fabd8af5f2459c7affeb139d89c73ef20184a98425bb75358941be5",
     "3 0 4 1 1 2 1 3 4 3 1 1 3 2 0 3 3 1 0 4 2 0 4 3 4 4 0 2 2 0 4 1"),
    (MANY_700, 128960, "735f283323883dfda460aca329ab801b3b03ae8afba800dcaf3bb4e2863eff42",
     "595 37 12 623 366 401 388 127 155 44 26 523 107 343 78 283 571 81 598 520 611 234 307 "
     "153 202 300 519 659 521 262 467 308"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("endpoints", "items", "digest", "owners"),
    GO_REFERENCE,
    ids=[f"{len(row[0])}:{row[0][0][:24]}" for row in GO_REFERENCE],
)
def test_the_ring_gives_the_exporters_own_answers(
    endpoints: list[str], items: int, digest: str, owners: str
) -> None:
    ring = HashRing(endpoints)
    laid_out = "".join(f"{p} {e}\n" for p, e in zip(ring.positions, ring.endpoints, strict=True))
    assert len(ring.positions) == items
    assert hashlib.sha256(laid_out.encode()).hexdigest() == digest
    found = [endpoints.index(ring.endpoint_for(service_routing_key(s))) for s in SERVICES]
    assert found == [int(i) for i in owners.split()]


def test_the_routing_key_is_the_exporters_attribute_key() -> None:
    assert service_routing_key("checkout") == b"service.name=checkout|"
    assert service_routing_key("café") == "service.name=café|".encode()


def test_the_ring_depends_on_the_set_of_endpoints_not_their_order() -> None:
    forward, backward = HashRing(STATEFULSET_3), HashRing(reversed(STATEFULSET_3))
    assert (forward.positions, forward.endpoints) == (backward.positions, backward.endpoints)


def test_an_endpoint_without_a_port_is_another_place_on_the_ring() -> None:
    """The exporter hashes the string as listed; ':4317' is added only to connect."""
    with_port, without = HashRing(STATEFULSET_2), HashRing(STATEFULSET_2_NO_PORT)
    assert with_port.positions != without.positions


def test_an_empty_ring_names_no_endpoint() -> None:
    assert HashRing([]).endpoint_for(b"service.name=x|") == ""


# -- ownership --------------------------------------------------------------------------------


def test_each_service_has_exactly_one_owner_and_the_shares_are_even() -> None:
    shards = [Shards(tuple(STATEFULSET_2), me) for me in STATEFULSET_2]
    services = [f"service-{i}" for i in range(4000)]
    owned = Counter(sum(s.owns(service) for s in shards) for service in services)
    assert owned == {1: 4000}
    share = sum(shards[0].owns(service) for service in services) / 4000
    assert 0.35 < share < 0.65
    assert shards[1].ordinal == 1 and shards[1].finalizer == shard_finalizer(1)


def test_a_replica_must_be_one_of_the_endpoints() -> None:
    with pytest.raises(ValueError, match="not one of the shard endpoints"):
        Shards(("a:4317", "b:4317"), "c:4317")


def test_orphaned_finalizers_are_those_no_running_replica_removes() -> None:
    two = Shards(("a:4317", "b:4317"), "a:4317")
    on_object = [FINALIZER, shard_finalizer(0), shard_finalizer(1), shard_finalizer(2), "x/y"]
    # Shard 1 removes its own (kopf does, on an object it does not handle); shard 2 is gone.
    assert orphaned_finalizers(on_object, two) == [FINALIZER, shard_finalizer(2)]
    # Unsharded again: every shard's finalizer is left behind, the operator's own is kept.
    assert orphaned_finalizers(on_object, None) == [shard_finalizer(i) for i in range(3)]
    assert orphaned_finalizers([shard_finalizer(0), "x/y"], two) == []


# -- settings -----------------------------------------------------------------------------------

ENDPOINTS = ",".join(STATEFULSET_3)


@pytest.mark.parametrize(
    ("env", "ordinal"),
    [
        ({"WEAVERGEN_SHARD_SELF": STATEFULSET_3[2]}, 2),
        ({"WEAVERGEN_SHARD_SELF": "1"}, 1),
        ({"WEAVERGEN_SHARD_SELF": "weavergen-operator-2"}, 2),
        ({"HOSTNAME": "weavergen-operator-0"}, 0),
        ({"HOSTNAME": "elsewhere", "WEAVERGEN_SHARD_SELF": "1"}, 1),
    ],
)
def test_a_replica_knows_its_endpoint_from_itself_its_ordinal_or_its_pod_name(
    env: dict[str, str], ordinal: int
) -> None:
    config = OperatorConfig.from_env({"WEAVERGEN_SHARD_ENDPOINTS": ENDPOINTS, **env})
    assert config.shard_endpoints == tuple(STATEFULSET_3)
    assert config.shard_endpoint == STATEFULSET_3[ordinal]


def test_without_shard_endpoints_the_operator_is_not_sharded() -> None:
    config = OperatorConfig.from_env({"HOSTNAME": "weavergen-operator-7"})
    assert (config.shard_endpoints, config.shard_endpoint) == ((), None)
    assert config.receiver_grpc_port is None
    assert OperatorConfig.from_env({"WEAVERGEN_RECEIVER_GRPC_PORT": "0"}).receiver_grpc_port == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WEAVERGEN_SHARD_SELF": "3"}, "WEAVERGEN_SHARD_SELF: expected one of the 3"),
        ({"HOSTNAME": "weavergen-operator-9"}, "HOSTNAME: expected one of the 3"),
        ({"HOSTNAME": "laptop"}, "HOSTNAME: expected one of the 3"),
        ({}, "WEAVERGEN_SHARD_SELF: required with WEAVERGEN_SHARD_ENDPOINTS"),
        (
            {"WEAVERGEN_SHARD_ENDPOINTS": "a:4317,a:4317", "WEAVERGEN_SHARD_SELF": "0"},
            "WEAVERGEN_SHARD_ENDPOINTS: expected distinct endpoints",
        ),
        ({"WEAVERGEN_RECEIVER_GRPC_PORT": "70000", "WEAVERGEN_SHARD_SELF": "0"}, "GRPC_PORT"),
    ],
)
def test_bad_shard_settings_are_refused_with_the_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        OperatorConfig.from_env({"WEAVERGEN_SHARD_ENDPOINTS": ENDPOINTS, **env})
