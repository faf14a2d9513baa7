"""Argo CD health checks of the two CRDs (deploy/argocd), run by a real Lua 5.1 interpreter.

A Python twin of argo-cd's ``util/lua/health_test.go``: for every ``health_test.yaml`` under
``deploy/argocd/resource_customizations``, each testdata object becomes the global ``obj`` (dicts
and lists as Lua tables, as argo-cd's ``decodeValue`` builds them), ``health.lua`` runs, and the
``status`` and ``message`` of the table it returns must equal the expectation.

Argo CD runs gopher-lua, a Lua 5.1. Each script runs twice: as an argocd-cm customization runs by
default (no ``string``, ``math``, ``io``, ``coroutine`` or ``debug`` library, a safe ``os``: see
argo-cd's ``util/lua/lua.go``), and with the standard libraries open, as built-in checks run.

Regenerate ``deploy/argocd/argocd-cm-patch.yaml`` from the scripts with
``.venv/bin/python -m tests.unit.test_argocd_health``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO
from tests.unit.test_crds import validate_against_crd

try:  # Lua 5.1, as gopher-lua; lupa builds without it fall back to their default Lua
    from lupa import lua51 as lupa_lua
except ImportError:  # pragma: no cover
    import lupa as lupa_lua

ARGOCD = REPO / "deploy" / "argocd"
CUSTOMIZATIONS = ARGOCD / "resource_customizations"
PATCH = ARGOCD / "argocd-cm-patch.yaml"
GROUP = "regeneration.weavergen.io"
HEALTH_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

# What an argocd-cm health script may use unless resource.customizations.useOpenLibs is set:
# the base, package and table libraries and an os with time and date only. Removing the string
# metatable also stops ("x"):upper() style calls, which gopher-lua has no library for here.
ARGOCD_CM_LIBRARIES = """
local time, date = os.time, os.date
debug.setmetatable("", nil)
for _, name in ipairs({"string", "math", "io", "coroutine", "debug"}) do
  _G[name] = nil
  package.loaded[name] = nil
end
os = {time = time, date = date}
package.loaded.os = os
"""
MODES = {"argocd-cm": False, "open-libs": True}


class KubeLoader(yaml.SafeLoader):
    """YAML as Kubernetes and argo-cd read it (through JSON): timestamps stay strings."""


KubeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=KubeLoader)


@dataclass(frozen=True)
class Case:
    """One entry of a health_test.yaml."""

    directory: Path
    input_path: str
    status: str
    message: str

    @property
    def id(self) -> str:
        return f"{self.directory.name}/{self.input_path}"

    @property
    def object(self) -> Any:
        return load(self.directory / self.input_path)

    @property
    def script(self) -> str:
        return (self.directory / "health.lua").read_text()


def kind_directories() -> list[Path]:
    return sorted(p.parent for p in CUSTOMIZATIONS.glob("*/*/health.lua"))


def cases() -> list[Case]:
    found = []
    for directory in kind_directories():
        for test in load(directory / "health_test.yaml")["tests"]:
            expected = test["healthStatus"]
            found.append(
                Case(directory, test["inputPath"], expected["status"], expected.get("message", ""))
            )
    return found


CASES = cases()


def to_lua(lua: Any, value: Any) -> Any:
    """A decoded object as Lua values: dicts and lists as tables (lists 1-based), None as nil."""
    if isinstance(value, dict):
        table = lua.table()
        for key, item in value.items():
            if item is not None:
                table[key] = to_lua(lua, item)
        return table
    if isinstance(value, list):
        table = lua.table()
        for index, item in enumerate(value, start=1):
            if item is not None:
                table[index] = to_lua(lua, item)
        return table
    return value


def run_health(script: str, obj: Any, *, open_libs: bool = False) -> dict[str, Any]:
    """Run a health script on an object, as argo-cd's ExecuteHealthLua does."""
    lua = lupa_lua.LuaRuntime(unpack_returned_tuples=False)
    if not open_libs:
        lua.execute(ARGOCD_CM_LIBRARIES)
    lua.globals().obj = to_lua(lua, obj)
    result = lua.execute(script)
    if result is None:
        return {}
    assert lupa_lua.lua_type(result) == "table", f"health.lua returned {result!r}"
    return {"status": result["status"], "message": result["message"]}


def script_of(kind: str) -> str:
    return (CUSTOMIZATIONS / GROUP / kind / "health.lua").read_text()


def test_the_interpreter_is_lua_5_1() -> None:
    assert lupa_lua.LuaRuntime().eval("_VERSION") == "Lua 5.1"


@pytest.mark.parametrize(
    "script",
    ['return {status = string.lower("Healthy")}', 'return {status = ("x"):upper()}'],
)
def test_argocd_cm_mode_has_no_string_library(script: str) -> None:
    assert run_health(script, {}, open_libs=True)["status"] in {"healthy", "X"}
    with pytest.raises(lupa_lua.LuaError):
        run_health(script, {})


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_health(case: Case, mode: str) -> None:
    result = run_health(case.script, case.object, open_libs=MODES[mode])
    assert result == {"status": case.status, "message": case.message}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_testdata_validates_against_the_crd(case: Case) -> None:
    obj = case.object
    assert obj["apiVersion"] == f"{case.directory.parent.name}/v1alpha1"
    assert obj["kind"] == case.directory.name
    validate_against_crd(obj)


@pytest.mark.parametrize("directory", kind_directories(), ids=lambda d: d.name)
def test_every_testdata_file_is_tested(directory: Path) -> None:
    tested = {c.input_path for c in CASES if c.directory == directory}
    present = {f"testdata/{p.name}" for p in (directory / "testdata").glob("*.yaml")}
    assert tested == present


def test_both_kinds_have_health_checks_and_the_expected_statuses() -> None:
    statuses: dict[str, set[str]] = {}
    for case in CASES:
        assert case.status in HEALTH_STATUSES, case.id
        statuses.setdefault(case.directory.name, set()).add(case.status)
    assert statuses == {
        # A charter is never Suspended: see the comment at the top of its health.lua.
        "RegenerationCharter": {"Healthy", "Progressing", "Degraded"},
        "RegenerationCycle": {"Healthy", "Progressing", "Degraded", "Suspended"},
    }


EDGE_CASES: list[tuple[str, str, Any, str, str]] = [
    (
        "charter-empty",
        "RegenerationCharter",
        {},
        "Progressing",
        "waiting for the operator to observe the charter",
    ),
    (
        "charter-null-status",
        "RegenerationCharter",
        {"metadata": {"generation": 2}, "status": None},
        "Progressing",
        "waiting for the operator to observe generation 2",
    ),
    (
        "charter-ready-false-without-message",
        "RegenerationCharter",
        {
            "metadata": {"generation": 1},
            "status": {
                "observedGeneration": 1,
                "conditions": [{"type": "Ready", "status": "False", "reason": "Broken"}],
            },
        },
        "Degraded",
        "not ready: Broken",
    ),
    (
        "charter-ready-without-entropy",
        "RegenerationCharter",
        {
            "metadata": {"generation": 1},
            "status": {
                "observedGeneration": 1,
                "conditions": [{"type": "Ready", "status": "True", "message": "entropy low (0)"}],
            },
        },
        "Healthy",
        "entropy low (0)",
    ),
    (
        "charter-odd-conditions",
        "RegenerationCharter",
        {
            "metadata": {"generation": 1},
            "status": {"observedGeneration": 1, "conditions": ["Ready", {}, {"type": "Degraded"}]},
        },
        "Progressing",
        "waiting for the first measurement",
    ),
    (
        "charter-degraded-without-entropy-or-spec",
        "RegenerationCharter",
        {
            "metadata": {"generation": 1},
            "status": {
                "observedGeneration": 1,
                "conditions": [{"type": "Degraded", "status": "True"}],
                "lastCycle": {"name": "c-1"},
            },
        },
        "Degraded",
        "entropy at or above the trigger level",
    ),
    (
        "cycle-empty",
        "RegenerationCycle",
        {},
        "Progressing",
        "waiting for the operator to start the cycle",
    ),
    (
        "cycle-unrecognised-phase",
        "RegenerationCycle",
        {"status": {"phase": "Paused"}},
        "Unknown",
        "unrecognised phase Paused",
    ),
    (
        "cycle-awaiting-approval-bare",
        "RegenerationCycle",
        {"status": {"phase": "AwaitingApproval"}},
        "Suspended",
        "waiting for approval: kubectl annotate rcy <name> regeneration.weavergen.io/approve=true",
    ),
    (
        "cycle-failed-without-message",
        "RegenerationCycle",
        {"status": {"phase": "Failed", "message": ""}},
        "Degraded",
        "failed",
    ),
    (
        "cycle-rolling-back-without-reason",
        "RegenerationCycle",
        {"status": {"phase": "RollingBack", "rollback": {}}},
        "Progressing",
        "rolling back",
    ),
    (
        "cycle-succeeded-without-message",
        "RegenerationCycle",
        {"status": {"phase": "Succeeded"}},
        "Healthy",
        "regeneration succeeded",
    ),
]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(
    ("kind", "obj", "status", "message"),
    [case[1:] for case in EDGE_CASES],
    ids=[case[0] for case in EDGE_CASES],
)
def test_scripts_survive_partial_objects(
    kind: str, obj: Any, status: str, message: str, mode: str
) -> None:
    result = run_health(script_of(kind), obj, open_libs=MODES[mode])
    assert result == {"status": status, "message": message}


def render_patch() -> str:
    """argocd-cm-patch.yaml: every health.lua inlined under its argocd-cm key."""
    lines = [
        "# Argo CD health checks of the weavergen CRDs, as an argocd-cm patch.\n",
        "# Generated from deploy/argocd/resource_customizations/*/*/health.lua by\n",
        "#   .venv/bin/python -m tests.unit.test_argocd_health\n",
        "# and checked by that test file, so do not edit it by hand. Apply with\n",
        "#   kubectl -n argocd patch configmap argocd-cm --patch-file argocd-cm-patch.yaml\n",
        "# or list it under `patches:` in the kustomization that installs Argo CD.\n",
        "apiVersion: v1\n",
        "kind: ConfigMap\n",
        "metadata:\n",
        "  name: argocd-cm\n",
        "data:\n",
    ]
    for directory in kind_directories():
        key = f"resource.customizations.health.{directory.parent.name}_{directory.name}"
        lines.append(f"  {key}: |\n")
        for line in (directory / "health.lua").read_text().splitlines():
            lines.append(f"    {line}\n" if line else "\n")
    return "".join(lines)


def test_the_argocd_cm_patch_embeds_the_scripts_unchanged() -> None:
    assert PATCH.read_text() == render_patch(), (
        "deploy/argocd/argocd-cm-patch.yaml is stale: run "
        ".venv/bin/python -m tests.unit.test_argocd_health"
    )
    data = yaml.safe_load(PATCH.read_text())["data"]
    assert data == {
        f"resource.customizations.health.{GROUP}_{kind}": script_of(kind)
        for kind in ("RegenerationCharter", "RegenerationCycle")
    }


if __name__ == "__main__":
    PATCH.write_text(render_patch())
    print(f"wrote {PATCH.relative_to(REPO)}")
