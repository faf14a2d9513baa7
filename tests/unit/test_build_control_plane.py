"""hack/build-control-plane.sh run twice at once (two `make test` on one machine) builds each
component once: the second run waits for the first and then finds the binaries cached.

A stand-in `go` on PATH makes each build take a second and logs it, so no real Go build runs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.helpers import REPO

SCRIPT = REPO / "hack" / "build-control-plane.sh"
KUBERNETES = ["kube-apiserver", "kube-controller-manager", "kubectl", "kubelet", "kube-scheduler"]
BUILT = sorted(["etcd", "helm", "coredns", *KUBERNETES, "kube-proxy"])

FAKE_GO = r"""#!/usr/bin/env bash
# `go mod download -json` names a go.mod, `go mod tidy` does nothing, `go build -o OUT` and
# `GOBIN=DIR go install PKG@VERSION` log the binary's name and write a stub after a pause.
set -eu
if [[ $1 == mod ]]; then
  if [[ $2 == download ]]; then printf '{\n\t"GoMod": "%s",\n}\n' "$FAKE_GOMOD"; fi
  exit 0
fi
package=${*: -1}; package=${package%@*}
out=${GOBIN:-}/${package##*/}
while (($#)); do if [[ $1 == -o ]]; then out=$2; fi; shift; done
name=${out##*/}
echo "${name%%.tmp*}" >>"$FAKE_GO_LOG"
sleep 1
printf '#!/bin/sh\n' >"$out"
chmod +x "$out"
"""


def test_two_concurrent_builds_build_each_binary_once(tmp_path: Path) -> None:
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    (fake_bin / "go").write_text(FAKE_GO)
    (fake_bin / "go").chmod(0o755)
    gomod = tmp_path / "release.go.mod"
    gomod.write_text("module example\n\ngo 1.24.0\n\nreplace k8s.io/api => ./staging/api\n")
    builds = tmp_path / "builds.log"
    cache = tmp_path / "cache"
    env = {
        **os.environ,
        "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
        "WEAVERGEN_CACHE": str(cache),
        "TMPDIR": str(tmp_path),
        "FAKE_GOMOD": str(gomod),
        "FAKE_GO_LOG": str(builds),
    }
    runs = [
        subprocess.Popen(["bash", str(SCRIPT)], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    logs = [run.communicate(timeout=60)[1] for run in runs]

    assert [run.returncode for run in runs] == [0, 0], logs
    assert sorted(builds.read_text().split()) == BUILT
    binaries = sorted(p.name for p in (cache / "bin").glob("*/*") if os.access(p, os.X_OK))
    assert binaries == BUILT
    assert not list((cache / "bin").glob("*/*.tmp*"))
