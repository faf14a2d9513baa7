"""A real node for the local plane: containerd and runc run its pods, the CNI bridge plugin gives
each pod an address, a kubelet registers it, kube-proxy routes its Services and kube-scheduler
places pods on it.

The node lives in a network namespace of its own, joined to the host by a veth pair: the
kubelet refuses a loopback node address, and several planes on one machine (two test runs, a
test run and ``make cluster-up``) must never share iptables rules, bridges or ports. Each plane
claims a subnet index N under ``/run/weavergen/subnets``:

    10.240.N.1   the host's end of the veth: the apiserver listens here
    10.240.N.2   the node's address (kubelet, kube-proxy)
    10.244.N.0/24 pod addresses, 10.96.N.0/24 Service addresses, both routed from the host
                 through the node, so tools on the host reach pods and Services as pods do.

Facts of these machines that shape the configuration (Firecracker VMs, cgroup v1, root without
CAP_SYS_RESOURCE): the kubelet runs with ``failCgroupV1: false`` and the cgroupfs driver, under a
cgroup root of its own; containerd must not raise the OOM score of a sandbox
(``restrict_oom_score_adj``), or runc fails every sandbox with "can't get final child's PID from
pipe: EOF"; unix socket paths must stay under 108 bytes, so containerd's sockets and the
kubelet's root (it makes sockets there) live under
``/run/weavergen/<key>``. Cluster DNS is CoreDNS on the node's address (pods resolve
``<service>.<namespace>.svc``); the host does not use it, so tools there reach Services by
ClusterIP.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

from hack.localplane import log, read_text, versions
from weavergen.domain.measure.workload import parse_time

if TYPE_CHECKING:
    from hack.localplane.plane import Plane

NODE_NAME = "weavergen-local-node"
PROCESSES = ("kube-scheduler", "coredns", "containerd", "kubelet", "kube-proxy")
# Controllers a node needs beyond those the agent plane runs: the not-ready taint a new Node
# carries is lifted by node-lifecycle, and kube-proxy routes Services from EndpointSlices.
CONTROLLERS = (
    "node-lifecycle-controller",
    "taint-eviction-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
)
RUN = Path("/run/weavergen")
SUBNETS = RUN / "subnets"
MAX_SUBNETS = 250
PAUSE_IMAGE = f"localhost/weavergen/pause:{versions()['PAUSE_VERSION']}"
CNI_BIN = Path("/usr/lib/cni")
RUNC = Path("/usr/sbin/runc")
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
# What CoreDNS's kubernetes plugin reads, granted to its own identity (system:coredns).
COREDNS_RBAC = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:coredns",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:coredns"}
            ],
        },
    ],
}


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, check=False, text=True, capture_output=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done


@dataclass(frozen=True)
class Subnet:
    """The addresses of one plane's node, from its subnet index."""

    index: int

    @property
    def host_ip(self) -> str:
        return f"10.240.{self.index}.1"

    @property
    def node_ip(self) -> str:
        return f"10.240.{self.index}.2"

    @property
    def pod_cidr(self) -> str:
        return f"10.244.{self.index}.0/24"

    @property
    def pod_gateway(self) -> str:
        return f"10.244.{self.index}.1"

    @property
    def service_cidr(self) -> str:
        return f"10.96.{self.index}.0/24"

    @property
    def kubernetes_service_ip(self) -> str:
        """The ``kubernetes`` Service's ClusterIP: the apiserver's certificate must name it."""
        return f"10.96.{self.index}.1"


class Node:
    """The real node of one plane; every name it derives comes from the plane's state path."""

    def __init__(self, plane: Plane) -> None:
        self.plane = plane
        self.dir = plane.state / "node"
        key = state_key(plane.state)
        self.netns = netns_name(plane.state)
        self.veth = f"wgh{key}"  # under 15 characters, as interface names must be
        self.run_dir = RUN / key
        self.cgroup_root = f"weavergen-{key}"
        self.socket = self.run_dir / "containerd.sock"

    # -- the network ------------------------------------------------------------------------

    @property
    def subnet(self) -> Subnet:
        return Subnet(int((self.plane.state / "subnet").read_text()))

    def recorded_index(self) -> int | None:
        """The subnet index this plane's state was made for, if any."""
        text = read_text(self.plane.state / "subnet")
        return int(text) if text else None

    def claim_network(self) -> Subnet:
        """Claim a subnet index, the one this state was made for if it is free, and make the
        node's network namespace; idempotent.

        A claim is a symlink from the index to the plane's state; it is stale (and taken over)
        once the namespace of the plane it names is gone, whoever removed it (claims live under
        /run, gone with a reboot, while a plane's state may stay)."""
        with _subnets_locked():
            index = self._claimed() or self._claim_free()
            (self.plane.state / "subnet").write_text(str(index))
            self._make_namespace(Subnet(index))
        return Subnet(index)

    def _claimed(self) -> int | None:
        for claim in SUBNETS.glob("[0-9]*"):
            if os.readlink(claim) == str(self.plane.state):
                return int(claim.name)
        return None

    def _claim_free(self) -> int:
        recorded = self.recorded_index()
        preferred = [recorded] if recorded else []
        for index in [*preferred, *range(1, MAX_SUBNETS + 1)]:
            claim = SUBNETS / str(index)
            if claim.is_symlink() and _stale(Path(os.readlink(claim))):
                claim.unlink()
            with contextlib.suppress(FileExistsError):
                claim.symlink_to(self.plane.state)
                return index
        raise RuntimeError(f"all {MAX_SUBNETS} node subnets under {SUBNETS} are claimed")

    def _make_namespace(self, subnet: Subnet) -> None:
        if Path(f"/run/netns/{self.netns}").exists():
            return
        try:
            self._wire_namespace(subnet)
        except RuntimeError:
            run("ip", "netns", "del", self.netns, check=False)  # the next up starts clean
            raise

    def _wire_namespace(self, subnet: Subnet) -> None:
        inside = ("ip", "-n", self.netns)
        run("ip", "netns", "add", self.netns)
        run("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0",
            "netns", self.netns)  # fmt: skip
        run("ip", "addr", "add", f"{subnet.host_ip}/30", "dev", self.veth)
        run("ip", "link", "set", self.veth, "up")
        run(*inside, "addr", "add", f"{subnet.node_ip}/30", "dev", "eth0")
        run(*inside, "link", "set", "eth0", "up")
        run(*inside, "link", "set", "lo", "up")
        run(*inside, "route", "add", "default", "via", subnet.host_ip)
        self.in_namespace("sysctl", "-qw", "net.ipv4.ip_forward=1")
        for cidr in (subnet.pod_cidr, subnet.service_cidr):
            run("ip", "route", "replace", cidr, "via", subnet.node_ip)

    def release_network(self) -> None:
        """Remove the namespace (the veth pair goes with it) and, while the claim is still this
        plane's, the routes and the claim: another plane may hold the index now."""
        run("ip", "netns", "del", self.netns, check=False)  # named after this plane alone
        index = self.recorded_index()
        if index is None:
            return
        with _subnets_locked():
            claim = SUBNETS / str(index)
            if claim.is_symlink() and os.readlink(claim) == str(self.plane.state):
                subnet = Subnet(index)
                for cidr in (subnet.pod_cidr, subnet.service_cidr):
                    run("ip", "route", "del", cidr, "via", subnet.node_ip, check=False)
                claim.unlink()

    def in_namespace(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(*self.namespaced(list(argv)), check=check)

    def namespaced(self, argv: list[str]) -> list[str]:
        """``argv`` in the node's network namespace; the mount namespace stays the host's, which
        the kubelet and containerd share for volumes and rootfs mounts."""
        return ["nsenter", f"--net=/run/netns/{self.netns}", *argv]

    # -- the node's processes -------------------------------------------------------------

    def start(self, images: list[Path]) -> None:
        """containerd (with ``images`` imported), kube-scheduler, kubelet and kube-proxy."""
        plane, subnet = self.plane, self.subnet
        self.dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for name in ("kubelet", "kube-proxy", "kube-scheduler", "coredns"):
            plane.write_identity_kubeconfig(self.dir / f"{name}.kubeconfig", name)
        self._write_cni_config(subnet)
        if plane.pid("containerd") is None:
            config = self._write_containerd_config()
            plane.spawn("containerd", self.namespaced(["containerd", "--config", str(config)]))
        plane.await_condition("containerd", self._containerd_serves, 60, ("containerd",))
        self._import(images)
        binaries = plane.binaries
        if plane.pid("kube-scheduler") is None:
            kubeconfig = self.dir / "kube-scheduler.kubeconfig"
            plane.spawn("kube-scheduler", [
                str(binaries.kube_scheduler),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",  # nothing here asks the scheduler for its health
                "--v=1",
            ])  # fmt: skip
        if plane.pid("coredns") is None:
            plane.kubectl("apply", "-f", "-", stdin=json.dumps(COREDNS_RBAC))
            plane.spawn("coredns", self.namespaced(
                [str(binaries.coredns), "-conf", str(self._write_corefile(subnet))]
            ))  # fmt: skip
        if plane.pid("kubelet") is None:
            self._make_cgroup_root()
            plane.spawn("kubelet", self.namespaced([
                str(binaries.kubelet),
                f"--config={self._write_kubelet_config(subnet)}",
                f"--kubeconfig={self.dir / 'kubelet.kubeconfig'}",
                # Short: the kubelet makes unix sockets under its root (108 bytes at most).
                f"--root-dir={self.run_dir / 'kubelet'}",
                f"--cert-dir={self.run_dir / 'kubelet' / 'pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={subnet.node_ip}",
                "--v=1",
            ]))  # fmt: skip
        if plane.pid("kube-proxy") is None:
            plane.spawn("kube-proxy", self.namespaced([
                str(binaries.kube_proxy), f"--config={self._write_proxy_config(subnet)}", "--v=1"
            ]))  # fmt: skip

    def _containerd_serves(self) -> bool:
        return run("ctr", "--address", str(self.socket), "version", check=False).returncode == 0

    def _import(self, images: list[Path]) -> None:
        for archive in images:
            started = time.monotonic()
            run("ctr", "--address", str(self.socket), "-n", "k8s.io", "images", "import",
                "--no-unpack", str(archive))  # fmt: skip
            log(f"imported {archive.name} in {time.monotonic() - started:.1f}s", "node")

    def ready(self) -> bool:
        """This kubelet reports the node Ready (a Node left from an earlier run of the plane
        may still say so) and it no longer carries the not-ready taint."""
        code, body = self.plane.get(f"/api/v1/nodes/{NODE_NAME}")
        started = self.plane.started_at("kubelet")
        if code != 200 or started is None:
            return False
        node = json.loads(body)
        taints = node.get("spec", {}).get("taints") or []
        return any(
            c.get("type") == "Ready"
            and c.get("status") == "True"
            and (heartbeat := parse_time(c.get("lastHeartbeatTime"))) is not None
            and heartbeat.replace(tzinfo=UTC).timestamp() >= int(started)
            for c in node.get("status", {}).get("conditions", [])
        ) and not any(t.get("key") == NOT_READY_TAINT for t in taints)

    def stop(self) -> None:
        """Stop the node and remove everything it made: containers (they outlive containerd,
        their shims are separate processes), mounts, cgroups; the network last."""
        plane = self.plane
        for name in ("kube-proxy", "kubelet", "kube-scheduler", "coredns"):
            plane.stop_process(name)
        if plane.pid("containerd") is not None:
            ctr = ("ctr", "--address", str(self.socket), "-n", "k8s.io")
            for task in run(*ctr, "tasks", "ls", "-q", check=False).stdout.split():
                run(*ctr, "tasks", "kill", "-s", "SIGKILL", task, check=False)
        plane.stop_process("containerd")
        self._kill_shims()
        self._kill_cgroup_processes()
        self._unmount()
        self._remove_cgroups()
        # Its pods are gone without a CNI DEL: their addresses are free again.
        shutil.rmtree(self.dir / "cni" / "ipam", ignore_errors=True)
        self.release_network()
        if any(m.startswith(f"{self.run_dir}/") for m in _mount_points()):
            log(f"mounts left under {self.run_dir}: not removing it", "node")
        else:  # nothing mounted under it: deleting cannot reach into a volume's source
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def _kill_shims(self) -> None:
        """Shims of this plane's containerd, matched by its socket (never by name alone)."""
        socket = str(self.socket).encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"containerd-shim-runc-v2") and socket in argv:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc.name), signal.SIGKILL)

    def cgroup_dirs(self) -> list[Path]:
        """The plane's cgroup root in every cgroup v1 hierarchy (on a cgroup v2 host, its one
        directory; the plane was made for v1 machines, v2 is untested)."""
        root = Path("/sys/fs/cgroup")
        if (root / "cgroup.controllers").exists():
            return [root / self.cgroup_root]
        return [
            hierarchy / self.cgroup_root
            for hierarchy in root.iterdir()
            if hierarchy.is_dir() and not hierarchy.is_symlink() and hierarchy.name != "unified"
        ]

    def _make_cgroup_root(self) -> None:
        for directory in self.cgroup_dirs():
            directory.mkdir(exist_ok=True)

    def cgroup_pids(self) -> set[int]:
        """Every process in the plane's cgroups: its containers'."""
        return {
            int(pid)
            for directory in self.cgroup_dirs()
            if directory.is_dir()
            for procs in directory.rglob("cgroup.procs")
            for pid in read_text(procs).split()
        }

    def _kill_cgroup_processes(self) -> None:
        """Container processes whose shim is gone: everything left in the plane's cgroups."""
        for _ in range(10):
            pids = self.cgroup_pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        log(f"processes left in the plane's cgroups: {sorted(self.cgroup_pids())}", "node")

    def _unmount(self) -> None:
        """Mounts under the plane: kubelet volumes, container root filesystems, pod netns."""
        prefixes = (f"{self.plane.state}/", f"{self.run_dir}/")
        for mount in sorted(_mount_points(), key=len, reverse=True):
            if mount.startswith(prefixes):
                run("umount", "-l", mount, check=False)

    def _remove_cgroups(self) -> None:
        for directory in self.cgroup_dirs():
            if directory.is_dir():
                for child in sorted(directory.rglob("*"), key=lambda p: -len(p.parts)):
                    if child.is_dir():
                        with contextlib.suppress(OSError):
                            child.rmdir()
                with contextlib.suppress(OSError):
                    directory.rmdir()

    # -- configuration --------------------------------------------------------------------

    def _write_containerd_config(self) -> Path:
        root = self.dir / "containerd"
        config = f"""version = 2
root = "{root / "root"}"
state = "{self.run_dir / "containerd"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{root / "opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  enable_selinux = false
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{RUNC}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{self.dir / "cni" / "net.d"}"
    max_conf_num = 1
"""
        path = self.dir / "containerd.toml"
        path.write_text(config)
        return path

    def _write_cni_config(self, subnet: Subnet) -> None:
        """A bridge in the node's namespace (no clash with other planes), host-local addresses
        from the plane's pod CIDR, masquerade for traffic leaving it, portmap for hostPorts."""
        conf = {
            "cniVersion": "0.4.0",
            "name": "weavergen",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    "ipMasq": True,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": subnet.pod_cidr, "gateway": subnet.pod_gateway}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.dir / "cni" / "ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        directory = self.dir / "cni" / "net.d"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "10-weavergen.conflist").write_text(json.dumps(conf, indent=2))

    def _write_kubelet_config(self, subnet: Subnet) -> Path:
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "failCgroupV1": False,  # these machines run cgroup v1 (hybrid)
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{self.cgroup_root}",
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "address": subnet.node_ip,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.plane.pki / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "podLogsDir": str(self.dir / "pod-logs"),
            "failSwapOn": False,
            "resolvConf": "/etc/resolv.conf",
            "clusterDomain": "cluster.local",
            "clusterDNS": [subnet.node_ip],
            "serializeImagePulls": False,
            # Nothing can be pulled here: never collect the imported images.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "protectKernelDefaults": False,
            "makeIPTablesUtilChains": False,
            "nodeStatusUpdateFrequency": "5s",
            "syncFrequency": "10s",
            "fileCheckFrequency": "10s",
            "runtimeRequestTimeout": "2m",
            "enforceNodeAllocatable": ["pods"],
            "maxPods": 110,
        }
        path = self.dir / "kubelet.json"
        path.write_text(json.dumps(config, indent=2))
        return path

    def _write_corefile(self, subnet: Subnet) -> Path:
        """Cluster names from the apiserver, and no others: the node's namespace has no route
        to the machine's resolvers (nor these machines to the internet), so an outside name
        fails at once instead of timing out."""
        corefile = f"""cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {subnet.node_ip}
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {self.dir / "coredns.kubeconfig"}
        pods insecure
        ttl 5
    }}
    cache 5
}}
"""
        path = self.dir / "Corefile"
        path.write_text(corefile)
        return path

    def _write_proxy_config(self, subnet: Subnet) -> Path:
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "iptables",
            "clusterCIDR": subnet.pod_cidr,
            "hostnameOverride": NODE_NAME,
            "clientConnection": {"kubeconfig": str(self.dir / "kube-proxy.kubeconfig")},
            "bindAddress": subnet.node_ip,
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            "conntrack": {"maxPerCore": 0},  # leave the machine's nf_conntrack_max alone
            "nodePortAddresses": ["primary"],
        }
        path = self.dir / "kube-proxy.json"
        path.write_text(json.dumps(config, indent=2))
        return path


@contextlib.contextmanager
def _subnets_locked() -> Iterator[None]:
    """Every claim and release of a subnet index, machine-wide, one at a time."""
    SUBNETS.mkdir(parents=True, exist_ok=True)
    with (SUBNETS / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def state_key(state: Path) -> str:
    """Eight hex digits of the plane's state path: its machine-wide names derive from them."""
    return hashlib.sha256(str(state).encode()).hexdigest()[:8]


def netns_name(state: Path) -> str:
    return f"wg-{state_key(state)}"


def _stale(state: Path) -> bool:
    """A claimed subnet whose plane's namespace is gone (the plane was destroyed, or the
    machine rebooted)."""
    return not Path(f"/run/netns/{netns_name(state)}").exists()


def _mount_points() -> list[str]:
    return [line.split()[1] for line in read_text(Path("/proc/mounts")).splitlines()]
