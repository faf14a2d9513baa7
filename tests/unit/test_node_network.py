"""The real node's subnet claims, without touching the machine: which index a plane gets, when a
claim is taken over, and that a plane never removes routes or a claim that are not its own.
The ``ip`` commands are recorded instead of run (they need root and change the host)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hack.localplane import node
from hack.localplane.plane import Plane


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Claims under a temporary directory; network namespaces are the states' ``netns``
    marker files; commands recorded."""
    commands: list[tuple[str, ...]] = []
    monkeypatch.setattr(node, "SUBNETS", tmp_path / "subnets")
    monkeypatch.setattr(node, "_stale", lambda state: not (state / "netns").exists())

    def run(*argv: str, check: bool = True) -> None:
        commands.append(argv)

    monkeypatch.setattr(node, "run", run)
    monkeypatch.setattr(node.Node, "_make_namespace", lambda self, subnet: _netns(self))
    return commands


def _netns(real: node.Node) -> None:
    (real.plane.state / "netns").touch()


def node_of(tmp_path: Path, name: str) -> node.Node:
    state = tmp_path / name
    state.mkdir()
    return node.Node(Plane(state))


def test_each_plane_gets_its_own_subnet_and_keeps_it(
    tmp_path: Path, machine: list[tuple[str, ...]]
) -> None:
    first, second = node_of(tmp_path, "a"), node_of(tmp_path, "b")
    assert first.claim_network().index == 1
    assert second.claim_network().index == 2
    assert first.claim_network().index == 1  # idempotent
    subnet = second.subnet
    assert (subnet.host_ip, subnet.node_ip) == ("10.240.2.1", "10.240.2.2")
    assert (subnet.pod_cidr, subnet.service_cidr) == ("10.244.2.0/24", "10.96.2.0/24")
    assert subnet.kubernetes_service_ip == "10.96.2.1"


def test_a_stale_claim_is_taken_over_and_a_live_one_never(
    tmp_path: Path, machine: list[tuple[str, ...]]
) -> None:
    gone, live = node_of(tmp_path, "gone"), node_of(tmp_path, "live")
    assert gone.claim_network().index == 1
    assert live.claim_network().index == 2
    (gone.plane.state / "netns").unlink()  # its namespace went (destroyed, or a reboot)
    newcomer = node_of(tmp_path, "new")
    assert newcomer.claim_network().index == 1
    assert node_of(tmp_path, "another").claim_network().index == 3


def test_a_plane_comes_back_on_the_subnet_its_state_was_made_for(
    tmp_path: Path, machine: list[tuple[str, ...]]
) -> None:
    """After a reboot (claims are gone, the state is not) its Services' ClusterIPs are of its
    old range: it takes that index again when it is free."""
    for name in ("a", "b", "c"):
        node_of(tmp_path, name).claim_network()
    kept = node.Node(Plane(tmp_path / "c"))
    for claim in node.SUBNETS.glob("[0-9]*"):
        claim.unlink()
    assert kept.claim_network().index == 3


def test_a_plane_releases_only_its_own_claim_and_routes(
    tmp_path: Path, machine: list[tuple[str, ...]]
) -> None:
    old = node_of(tmp_path, "old")
    assert old.claim_network().index == 1
    (old.plane.state / "netns").unlink()
    taken_over = node_of(tmp_path, "new")
    assert taken_over.claim_network().index == 1
    machine.clear()

    old.release_network()  # its state still says index 1: that is the new plane's now
    assert (node.SUBNETS / "1").readlink() == taken_over.plane.state
    assert not [c for c in machine if "route" in c]
    assert machine == [("ip", "netns", "del", old.netns)]

    taken_over.release_network()
    assert not (node.SUBNETS / "1").is_symlink()
    routes = sorted(c[3] for c in machine if "route" in c)
    assert routes == ["10.244.1.0/24", "10.96.1.0/24"]


def test_derived_names_fit_the_kernels_limits_and_differ_per_plane(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 200) / "plane"
    real, other = node.Node(Plane(deep)), node.Node(Plane(tmp_path / "plane"))
    assert len(real.veth) <= 15  # IFNAMSIZ - 1
    assert len(str(real.socket)) < 108 - len("/kubelet/pod-resources/1234567890.sock")
    assert {real.netns, real.veth, real.cgroup_root} & {
        other.netns,
        other.veth,
        other.cgroup_root,
    } == set()
