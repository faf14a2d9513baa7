"""Security properties of the operator's code (issue 10, item 7), each as a test.

- No shell-outs and no dynamic code: the package is scanned for process spawning, ``eval``,
  ``exec``, ``compile`` and friends; the only uses are the restricted engine's own, listed below
  with the reason each is safe. A new one fails until it is reviewed and listed.
- BPMN conditions and scripts run with whitelisted syntax and builtins: imports, ``open``,
  attribute escapes and the like are refused and have no effect, validated or not.
- A charter (or a custom strategy) carries data, never code: names are validated, free text and
  parameters reach BPMN and the workflow data as values, whatever quotes or XML they contain.
- The OTLP receiver and the gate are loopback-only unless asked otherwise, and honour a bearer
  token; ``/metrics`` stays open for scrapers.
"""

from __future__ import annotations

import ast
import asyncio
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import ClientSession
from pydantic import ValidationError
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from tests.helpers import REPO
from tests.unit.workflows.fakes import Recorder
from weavergen.api.charter import RegenerationCharterSpec
from weavergen.api.cycle import RegenerationCycleSpec
from weavergen.cli import build_parser
from weavergen.config import operator_config
from weavergen.domain.decide.gate import GateAnswer
from weavergen.domain.simulation.simulator import EntropySimulator
from weavergen.domain.simulation.twin import Twin
from weavergen.handlers.http import OPEN_PATHS, add_routes
from weavergen.k8s.gate import Gate
from weavergen.phases.cycle import CyclePhases
from weavergen.telemetry.receiver import ReceiverConfig, build_app, serve
from weavergen.telemetry.windows import WindowStore
from weavergen.workflows.engine import (
    SAFE_BUILTINS,
    InvalidWorkflow,
    RestrictedScriptEngine,
    UnsafeExpression,
    WorkflowFailed,
    WorkflowRun,
    compile_restricted,
    load_process,
    load_process_text,
)
from weavergen.workflows.generator import CustomStrategy, generate_bpmn

PACKAGE = REPO / "operator" / "weavergen"
BPMN_NS = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
SPIFF_NS = "{http://spiffworkflow.org/bpmn/schema/1.0/core}"

# ---------------------------------------------------------------------------------------------
# No shell-outs, no dynamic code
# ---------------------------------------------------------------------------------------------

ALLOWED: dict[tuple[str, str, str], str] = {
    ("workflows/engine.py", "compile_restricted", "compile"): (
        "compiles only the syntax tree it has just checked node by node: whitelisted syntax, "
        "no names starting with '_', attribute access limited to SAFE_METHODS, calls limited to "
        "SAFE_BUILTINS and those methods"
    ),
    ("workflows/engine.py", "RestrictedScriptEngine.evaluate", "eval"): (
        "evaluates only code from compile_restricted, with _globals(): SAFE_BUILTINS as "
        "__builtins__ and the task data as a read-only mapping"
    ),
    ("workflows/engine.py", "RestrictedScriptEngine.execute", "exec"): (
        "runs only code from compile_restricted (assignments to plain names), with the same "
        "restricted globals; the task data is the only namespace it writes"
    ),
}
"""(file under weavergen/, enclosing function, construct) -> why this use is safe."""

DYNAMIC_BUILTINS = frozenset({"eval", "exec", "compile", "__import__", "breakpoint"})
DANGEROUS_MODULES = frozenset(
    {"subprocess", "pty", "pickle", "marshal", "shelve", "dill", "commands", "popen2"}
)
DANGEROUS_CALLS = frozenset(
    {
        "os.system",
        "os.popen",
        "os.startfile",
        "os.fork",
        "os.forkpty",
        "asyncio.create_subprocess_exec",
        "asyncio.create_subprocess_shell",
        "importlib.import_module",
        "importlib.__import__",
        "yaml.load",
        "yaml.unsafe_load",
        "yaml.full_load",
        "builtins.eval",
        "builtins.exec",
    }
)
DANGEROUS_PREFIXES = ("os.exec", "os.spawn", "os.posix_spawn", "subprocess.")


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


class _Finder(ast.NodeVisitor):
    """Every process spawn, shell, dynamic import or dynamic code construct, by function."""

    def __init__(self) -> None:
        self.scope: list[str] = []
        self.found: list[tuple[str, str, int]] = []

    def _add(self, what: str, node: ast.AST) -> None:
        self.found.append((".".join(self.scope) or "<module>", what, getattr(node, "lineno", 0)))

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped  # noqa: N815

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] in DANGEROUS_MODULES:
                self._add(f"import {alias.name}", node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            dotted = f"{module}.{alias.name}"
            if (
                module.split(".")[0] in DANGEROUS_MODULES
                or dotted in DANGEROUS_CALLS
                or dotted.startswith(DANGEROUS_PREFIXES)
                or (module == "builtins" and alias.name in DYNAMIC_BUILTINS)
            ):
                self._add(f"from {module} import {alias.name}", node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        if isinstance(node.func, ast.Name) and node.func.id in DYNAMIC_BUILTINS:
            self._add(node.func.id, node)
        elif name and (name in DANGEROUS_CALLS or name.startswith(DANGEROUS_PREFIXES)):
            self._add(name, node)
        for keyword in node.keywords:
            if keyword.arg == "shell" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            ):
                self._add("shell=True", node)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in ("__builtins__", "__import__") and not isinstance(node.ctx, ast.Store):
            self._add(node.id, node)  # e.g. getattr(__builtins__, "eval")


def scan(source: str) -> list[tuple[str, str, int]]:
    finder = _Finder()
    finder.visit(ast.parse(source))
    return finder.found


def package_files() -> Iterator[tuple[str, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), path.read_text()


def test_the_scanner_finds_what_it_looks_for() -> None:
    """The scan is only worth something if it sees these: one line each."""
    source = (
        "import subprocess\n"
        "from os import system\n"
        "import pickle\n"
        "def f(cmd):\n"
        "    os.system(cmd)\n"
        "    os.popen(cmd)\n"
        "    os.execvp('sh', ['sh'])\n"
        "    subprocess.run(cmd, shell=True)\n"
        "    asyncio.create_subprocess_shell(cmd)\n"
        "    eval(cmd)\n"
        "    exec(cmd)\n"
        "    __import__('os')\n"
        "    importlib.import_module(cmd)\n"
        "    yaml.load(cmd)\n"
        "    getattr(__builtins__, 'eval')\n"
        "    anything(cmd, shell=flag)\n"
        "    re.compile(cmd)\n"  # not dynamic code: a regular expression
        "    yaml.safe_load(cmd)\n"  # not dangerous
    )
    found = {(what, line) for _, what, line in scan(source)}
    assert found == {
        ("import subprocess", 1),
        ("from os import system", 2),
        ("import pickle", 3),
        ("os.system", 5),
        ("os.popen", 6),
        ("os.execvp", 7),
        ("subprocess.run", 8),
        ("shell=True", 8),
        ("asyncio.create_subprocess_shell", 9),
        ("eval", 10),
        ("exec", 11),
        ("__import__", 12),
        ("importlib.import_module", 13),
        ("yaml.load", 14),
        ("__builtins__", 15),
        ("shell=True", 16),
    }
    assert {scope for scope, _, _ in scan(source)} == {"<module>", "f"}


def test_no_shell_outs_or_dynamic_code_beyond_the_reviewed_ones() -> None:
    found: dict[tuple[str, str, str], int] = {}
    for relative, source in package_files():
        for scope, what, line in scan(source):
            found[(relative, scope, what)] = line
    unexpected = {k: v for k, v in found.items() if k not in ALLOWED}
    assert not unexpected, (
        "new shell-out or dynamic code (review it; if it is safe, add it to ALLOWED with the "
        "reason): "
        + ", ".join(
            f"{f}:{line} {what} in {scope}" for (f, scope, what), line in unexpected.items()
        )
    )
    stale = set(ALLOWED) - set(found)
    assert not stale, f"ALLOWED lists uses that no longer exist: {sorted(stale)}"


def test_the_allowed_eval_and_exec_get_restricted_globals() -> None:
    """The listed eval/exec run code from compile_restricted with ``_globals(...)``: a plain
    ``eval(source)`` in their place would fail here."""
    tree = ast.parse((PACKAGE / "workflows" / "engine.py").read_text())
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("eval", "exec")
    ]
    assert len(calls) == 2
    for call in calls:
        code, namespace, _local = call.args
        assert isinstance(code, ast.Name) and code.id == "code"
        assert isinstance(namespace, ast.Call) and _dotted(namespace.func) == "_globals"
    assigned = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and _dotted(node.value.func) == "compile_restricted"
    ]
    assert {cast(ast.Name, a.targets[0]).id for a in assigned} == {"code"}
    assert "__builtins__" not in SAFE_BUILTINS
    assert not {"open", "getattr", "setattr", "type", "vars", "globals", "eval", "exec"} & set(
        SAFE_BUILTINS
    )


# ---------------------------------------------------------------------------------------------
# BPMN conditions and scripts: restricted
# ---------------------------------------------------------------------------------------------


def attacks(marker: Path) -> dict[str, tuple[str, str]]:
    """name -> (source, mode); each would create ``marker`` (or worse) if it ran."""
    m = str(marker)
    return {
        "import call": (f"__import__('os').system('touch {m}')", "eval"),
        "import statement": (f"import os\nos.system('touch {m}')", "exec"),
        "from import": ("from os import system", "exec"),
        "open": (f"open({m!r}, 'w').write('pwned')", "eval"),
        "subclasses": ("().__class__.__mro__[1].__subclasses__()", "eval"),
        "popen via subclasses": (
            "[c for c in ().__class__.__base__.__subclasses__() "
            f"if c.__name__ == 'Popen'][0](['touch', {m!r}])",
            "eval",
        ),
        "builtins module via __self__": (f"len.__self__.open({m!r}, 'w')", "eval"),
        "getattr": (f"getattr(__builtins__, 'open')({m!r}, 'w')", "eval"),
        "globals": ("globals()['__builtins__']", "eval"),
        "format escape": ("'{0.__globals__}'.format(len)", "eval"),
        "f-string": (f"f\"{{__import__('os').system('touch {m}')}}\"", "eval"),
        "lambda": ("(lambda: 1)()", "eval"),
        "nested eval": (f"eval(\"open({m!r}, 'w')\")", "eval"),
        "exec": (f"exec(\"open({m!r}, 'w')\")", "eval"),
        "type": ("type('X', (), {})", "eval"),
        "fullwidth underscores": ("\uff3f\uff3fimport\uff3f\uff3f('os')", "eval"),
        "assign builtins": ("__builtins__ = {'open': 1}", "exec"),
        "attribute assignment": ("data.x = 1", "exec"),
        "function definition": (f"def f():\n    open({m!r}, 'w')\nf()", "exec"),
        "with statement": (f"with open({m!r}, 'w') as f:\n    pass", "exec"),
        "method of a method": ("data.get.__self__", "eval"),
        "walrus": ("(x := 1)", "eval"),
    }


MARKER_ATTACKS = list(attacks(Path("/m")))


def script_workflow(script: str | None = None, condition: str | None = None) -> str:
    """start -> [script] -> gateway [condition] -> end: no service task, nothing to call."""
    body = '<bpmn:startEvent id="start"/>\n'
    previous = "start"
    if script is not None:
        body += (
            '<bpmn:scriptTask id="attack" scriptFormat="python"><bpmn:script>'
            f"{_xml(script)}</bpmn:script></bpmn:scriptTask>\n"
            '<bpmn:sequenceFlow id="f_attack" sourceRef="start" targetRef="attack"/>\n'
        )
        previous = "attack"
    body += (
        '<bpmn:exclusiveGateway id="gw" default="f_no"/>\n'
        f'<bpmn:sequenceFlow id="f_gw" sourceRef="{previous}" targetRef="gw"/>\n'
        '<bpmn:sequenceFlow id="f_yes" sourceRef="gw" targetRef="yes">'
        f"<bpmn:conditionExpression>{_xml(condition or 'True')}</bpmn:conditionExpression>"
        "</bpmn:sequenceFlow>\n"
        '<bpmn:sequenceFlow id="f_no" sourceRef="gw" targetRef="no"/>\n'
        '<bpmn:scriptTask id="yes"><bpmn:script>outcome = "yes"</bpmn:script></bpmn:scriptTask>\n'
        '<bpmn:sequenceFlow id="f_yes_end" sourceRef="yes" targetRef="end_yes"/>\n'
        '<bpmn:endEvent id="end_yes"/>\n'
        '<bpmn:scriptTask id="no"><bpmn:script>outcome = "no"</bpmn:script></bpmn:scriptTask>\n'
        '<bpmn:sequenceFlow id="f_no_end" sourceRef="no" targetRef="end_no"/>\n'
        '<bpmn:endEvent id="end_no"/>\n'
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" '
        'targetNamespace="https://weavergen.io/test">\n'
        f'<bpmn:process id="p" isExecutable="true">\n{body}</bpmn:process>\n'
        "</bpmn:definitions>\n"
    )


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unvalidated(xml: str) -> WorkflowRun:
    """A run that skipped validation (as a hand-made state might): the engine is the last line."""
    spec, subs = load_process_text(xml)
    registry = Recorder().registry()
    return WorkflowRun(
        BpmnWorkflow(spec, subs, script_engine=RestrictedScriptEngine(registry)), registry
    )


@pytest.mark.parametrize("attack", MARKER_ATTACKS)
def test_an_attack_in_a_script_or_condition_is_refused_and_has_no_effect(
    attack: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    source, mode = attacks(marker)[attack]
    with pytest.raises(UnsafeExpression):
        compile_restricted(source, mode)  # type: ignore[arg-type]
    places = [("script", script_workflow(script=source))]
    if mode == "eval":
        places.append(("script", script_workflow(script=f"x = {source}")))
        places.append(("condition", script_workflow(condition=source)))
    for place, xml in places:
        spec, subs = load_process_text(xml)
        with pytest.raises(InvalidWorkflow, match=r"not allowed|syntax error|only plain names"):
            WorkflowRun.start(spec, subs, Recorder().registry(), {})
        run = unvalidated(xml)
        with pytest.raises(
            WorkflowFailed, match=r"not allowed|syntax error|only plain names"
        ) as failed:
            run.run()
        assert "attack" in str(failed.value) or "gw" in str(failed.value), place
        assert not run.completed and run.data.get("outcome") is None
    assert not marker.exists()


@pytest.mark.parametrize(
    ("script", "error"),
    [
        ("x = open", "NameError"),  # a plain name: the syntax is fine, the builtin is absent
        ("x = print", "NameError"),
        ("x = getattr", "NameError"),
        ("x = data.get('x', len)", None),  # the safe builtins are there, as values only
    ],
)
def test_scripts_see_only_the_safe_builtins(script: str, error: str | None) -> None:
    run = unvalidated(script_workflow(script=script))
    if error is None:
        run.run()
        assert run.completed and run.data["outcome"] == "yes"
        return
    with pytest.raises(WorkflowFailed, match=error):
        run.run()


def test_task_data_cannot_be_code(tmp_path: Path) -> None:
    """A value in the data is compared and passed on, never evaluated, whatever it says."""
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    xml = script_workflow(script="y = x.strip()", condition="y == x and len(y) > 0")
    spec, subs = load_process_text(xml)
    run = WorkflowRun.start(spec, subs, Recorder().registry(), {"x": payload})
    run.run()
    assert run.data["outcome"] == "yes" and run.data["y"] == payload
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# A charter or custom strategy carries data, never code
# ---------------------------------------------------------------------------------------------

MALICIOUS_TEXT = [
    "x'); __import__('os').system('touch MARKER'); ('",
    'x"); __import__("os").system("touch MARKER"); ("',
    "'''\n__import__('os').system('touch MARKER')\n'''",
    "\n__import__('os').system('touch MARKER')\n",
    "\\'; open('MARKER', 'w'); '\\",
    "</bpmn:documentation><bpmn:scriptTask id='evil' scriptFormat='python'><bpmn:script>"
    "__import__('os').system('touch MARKER')</bpmn:script></bpmn:scriptTask>",
    "]]><![CDATA[ __import__('os') ]]>",
    '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>&e;',
    "&amp; &lt; &#x41; & < > \" '",
    "{outcome} {0.__class__} %(x)s ${x}",
    "tab\there, nul\x00, bell\x07, del\x7f, \u2028 line separator, \ufeff bom",
]


def fuzz_values(marker: Path) -> list[str]:
    return [v.replace("MARKER", str(marker)) for v in MALICIOUS_TEXT]


def custom(name: str, reason: str, description: str = "") -> CustomStrategy:
    return CustomStrategy.model_validate(
        {
            "name": name,
            "description": description,
            "steps": [
                {"action": "escalate", "params": {"reason": reason}},
                {"action": "settle", "params": {"seconds": 1}},
                {"action": "rollout_restart"},
            ],
        }
    )


def shape(xml: str) -> list[str]:
    """The element tags of a BPMN document in order: what an injection would have to change."""
    return [el.tag for el in ET.fromstring(xml.encode()).iter()]


@pytest.mark.parametrize("index", range(len(MALICIOUS_TEXT)))
def test_strategy_parameters_arrive_as_data_not_code(index: int, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    value = fuzz_values(marker)[index]
    benign = generate_bpmn(custom("fuzz", "plain reason"))
    xml = generate_bpmn(custom("fuzz", value))
    assert shape(xml) == shape(benign)  # no element was added, removed or moved
    params = [
        el.get("value")
        for el in ET.fromstring(xml.encode()).iter(f"{SPIFF_NS}parameter")
        if el.get("id") == "reason"
    ]
    assert params == [repr(value)]  # a Python literal, nothing else
    recorder = Recorder()
    spec, subs = load_process_text(xml)
    run = WorkflowRun.start(spec, subs, recorder.registry(), {})
    run.run()
    assert run.outcome == "succeeded"
    assert ("escalate", {"reason": value}) in recorder.calls  # the exact string, as data
    assert not marker.exists()


@pytest.mark.parametrize("index", range(len(MALICIOUS_TEXT)))
def test_a_strategy_description_is_text_or_refused(index: int, tmp_path: Path) -> None:
    """The description becomes the process's documentation: XML-escaped text, or refused up
    front when it holds characters XML 1.0 cannot carry (never an unparsable workflow)."""
    marker = tmp_path / "pwned"
    value = fuzz_values(marker)[index]
    xml_chars = all(
        c in "\t\n\r" or "\x20" <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd" for c in value
    )
    if not xml_chars:
        with pytest.raises(ValidationError, match="description"):
            custom("fuzz", "r", description=value)
        return
    xml = generate_bpmn(custom("fuzz", "r", description=value))
    assert shape(xml) == shape(generate_bpmn(custom("fuzz", "r", description="plain")))
    documentation = ET.fromstring(xml.encode()).find(f".//{BPMN_NS}documentation")
    assert documentation is not None
    assert documentation.text == value.replace("\r", "\n") or documentation.text == value
    spec, subs = load_process_text(xml)
    run = WorkflowRun.start(spec, subs, Recorder().registry(), {})
    run.run()
    assert run.outcome == "succeeded"
    assert not marker.exists()


BAD_NAMES = [
    "x'; import os",
    "../../etc/passwd",
    "strategies/../../x",
    "x\nimport os",
    "<x/>",
    "Upper",
    "a b",
    "x" * 64,
    "",
    "-x",
    "x.bpmn",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_strategy_names_that_reach_files_and_process_ids_are_validated(name: str) -> None:
    """Strategy names become BPMN process ids and file names (develop's workflow_path): every
    place a charter, a cycle or a custom strategy names one, the name is a DNS-like label."""
    with pytest.raises(ValidationError):
        custom(name, "r")
    with pytest.raises(ValidationError):
        RegenerationCycleSpec.model_validate({"charterRef": {"name": "web"}, "strategy": name})
    for field in ("allow", "deny"):
        with pytest.raises(ValidationError):
            charter_spec({"strategies": {field: [name]}})


@pytest.mark.parametrize(
    "params",
    [
        {"seconds": "1; __import__('os')"},
        {"seconds": "data.get('x')"},
        {"seconds": ["1"]},
        {"seconds": {"__class__": 1}},
        {"seconds": 1.5},
        {"seconds": True},
        {"__import__": 1},
    ],
)
def test_strategy_parameters_are_typed_scalars(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CustomStrategy.model_validate(
            {"name": "typed", "steps": [{"action": "settle", "params": params}]}
        )


def charter_spec(extra: dict[str, Any] | None = None) -> RegenerationCharterSpec:
    return RegenerationCharterSpec.model_validate(
        {
            "systemId": "web",
            "systemType": "web-service",
            "target": {"workloads": [{"name": "web"}]},
            "telemetry": {
                "serviceName": "web",
                "source": "configMap",
                "configMap": {"name": "spans", "key": "spans.json"},
            },
            **(extra or {}),
        }
    )


@pytest.mark.parametrize("index", range(len(MALICIOUS_TEXT)))
def test_a_cycles_free_text_flows_through_the_cycle_as_data(index: int, tmp_path: Path) -> None:
    """The cycle's ``reason`` is the free text a person (or pipeline) writes; it travels in the
    workflow data of the real DMEDI cycle, run on the digital twin, and is never evaluated."""
    marker = tmp_path / "pwned"
    reason = fuzz_values(marker)[index][:1024]
    simulator = EntropySimulator(3)
    twin = Twin.build(simulator, "config_corruption", 1)
    spec = charter_spec()
    cycle = RegenerationCycleSpec.model_validate({"charterRef": {"name": "web"}, "reason": reason})
    phases = CyclePhases(twin, spec, cycle)
    process, subs = load_process(operator_config().bpmn_dir / "dmedi_cycle.bpmn", "dmedi_cycle")
    run = WorkflowRun.start(process, subs, phases.registry(), {})
    run.run()
    assert run.completed and run.outcome in ("succeeded", "rolled_back")
    assert run.data["define"]["reason"] == reason
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# The receiver and the gate: loopback by default, bearer token honoured
# ---------------------------------------------------------------------------------------------

TOKEN = "t0ken-with-enough-entropy"


class StandInGate:
    """Only what the HTTP layer calls: this is a test of the routes, not of the gate."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def answer(self, namespace: str, name: str) -> GateAnswer:
        self.calls.append(("answer", namespace, name))
        return GateAnswer(charter=f"{namespace}/{name}", decision="allowed", reason="low entropy")

    def request_cycle(self, namespace: str, name: str, now: datetime) -> GateAnswer:
        self.calls.append(("request_cycle", namespace, name))
        return GateAnswer(
            charter=f"{namespace}/{name}", decision="allowed", reason="ok", cycle_requested=True
        )


WRONG = [
    None,
    "",
    "Bearer",
    "Bearer ",
    "Bearer wrong",
    f"Bearer {TOKEN[:-1]}",
    f"Bearer {TOKEN}x",
    f"Bearer  {TOKEN}",
    f"Basic {TOKEN}",
    TOKEN,
]


def test_the_endpoints_need_the_token_and_metrics_stay_open() -> None:
    store = WindowStore()
    gate = StandInGate()
    app = build_app(store, ReceiverConfig(token=TOKEN, open_paths=OPEN_PATHS))
    add_routes(app, cast(Gate, gate))
    otlp = {"Content-Type": "application/json"}
    body = json.dumps({"resourceSpans": []}).encode()

    async def main() -> None:
        runner, port = await serve(app, "127.0.0.1", 0)
        try:
            assert [a[0] for a in runner.addresses] == ["127.0.0.1"]
            url = f"http://127.0.0.1:{port}"
            async with ClientSession() as session:

                async def status(method: str, path: str, auth: str | None, **kw: Any) -> int:
                    headers = dict(kw.pop("headers", {}))
                    if auth is not None:
                        headers["Authorization"] = auth
                    async with session.request(method, url + path, headers=headers, **kw) as r:
                        await r.read()
                        return r.status

                requests: list[tuple[str, str, dict[str, Any]]] = [
                    ("POST", "/v1/traces", {"data": body, "headers": otlp}),
                    ("GET", "/v1/summaries/web?seconds=60", {}),
                    ("GET", "/gate/ns/web", {}),
                    ("POST", "/gate/ns/web/cycle", {}),
                ]
                for method, path, kw in requests:
                    for auth in WRONG:
                        assert await status(method, path, auth, **kw) == 401, (path, auth)
                    # Not in the query string either: only the header counts.
                    assert (
                        await status(
                            method, f"{path}{'&' if '?' in path else '?'}token={TOKEN}", None, **kw
                        )
                        == 401
                    )
                assert gate.calls == []  # refused before the gate was asked anything
                assert store.counters.rejected_requests == len(WRONG) + 1
                for method, path, kw in requests:
                    assert await status(method, path, f"Bearer {TOKEN}", **kw) == 200, path
                assert gate.calls == [("answer", "ns", "web"), ("request_cycle", "ns", "web")]
                for auth in (None, "Bearer wrong"):
                    assert await status("GET", "/metrics", auth) == 200
        finally:
            await runner.cleanup()

    asyncio.run(main())


def test_without_a_token_the_endpoints_are_open_but_loopback_only() -> None:
    """The default: no token, and the operator binds 127.0.0.1 unless --receiver-host says
    otherwise (the chart sets it, with a token from a Secret, when pods must reach it)."""
    args = build_parser().parse_args(["operator", "run"])
    assert args.receiver_host == "127.0.0.1"
    widened = build_parser().parse_args(["operator", "run", "--receiver-host", "0.0.0.0"])
    assert widened.receiver_host == "0.0.0.0"
    gate = StandInGate()
    app = build_app(WindowStore())
    add_routes(app, cast(Gate, gate))

    async def main() -> None:
        runner, port = await serve(app, args.receiver_host, 0)
        try:
            assert {a[0] for a in runner.addresses} == {"127.0.0.1"}
            async with (
                ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/gate/ns/web") as response,
            ):
                assert response.status == 200
                assert (await response.json())["decision"] == "allowed"
        finally:
            await runner.cleanup()

    asyncio.run(main())
