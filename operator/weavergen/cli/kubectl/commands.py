"""The plugin's commands: read with the user's kubeconfig, render with the pure functions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TextIO, TypeVar

from pydantic import BaseModel, ValidationError

from weavergen.api.charter import RegenerationCharter
from weavergen.api.common import format_validation_error
from weavergen.api.cycle import FINAL_PHASES, RegenerationCycle
from weavergen.cli.common import dump, fail
from weavergen.cli.kubectl.actions import ACTIONS, already, annotation_patch, refusal
from weavergen.cli.kubectl.cluster import ApiError, Kube
from weavergen.cli.kubectl.render import charter_screen, cycle_screen, get_table
from weavergen.cli.kubectl.why import why_text
from weavergen.cli.observe import charter_objects, write_report
from weavergen.domain.errors import RegenerationError
from weavergen.k8s.jobs import parse_result, result_name
from weavergen.reports.html import cycle_sort_key

M = TypeVar("M", bound=BaseModel)
CHARTER, CYCLE = "RegenerationCharter", "RegenerationCycle"
KIND_NAMES = {
    "charters": CHARTER,
    "charter": CHARTER,
    "rch": CHARTER,
    "regenerationcharters": CHARTER,
    "cycles": CYCLE,
    "cycle": CYCLE,
    "rcy": CYCLE,
    "regenerationcycles": CYCLE,
}
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen: a fresh screen per change
DONE_WELL = frozenset({"Succeeded", "NotNeeded"})


class Refused(Exception):
    """The action means nothing for the cycle as it is now: exit 1 with the reason."""


def now() -> datetime:
    return datetime.now(UTC)


def parse(model: type[M], obj: dict[str, Any]) -> M:
    """An object from the cluster as its model; a malformed one is named with the field."""
    try:
        return model.model_validate(obj)
    except ValidationError as err:
        meta = obj.get("metadata") or {}
        fail(
            f"{obj.get('kind')} {meta.get('namespace')}/{meta.get('name')}: "
            f"{format_validation_error(err)}"
        )


def kube_and_namespace(args: argparse.Namespace) -> tuple[Kube, str]:
    kube = Kube(args.kubeconfig, args.context)
    return kube, args.namespace or kube.namespace


# -- get ----------------------------------------------------------------------------------------


def cmd_get(args: argparse.Namespace) -> int:
    kube, namespace = kube_and_namespace(args)
    where = None if args.all_namespaces else namespace
    kinds = [KIND_NAMES[args.kind]] if args.kind else [CHARTER, CYCLE]
    found: dict[str, list[dict[str, Any]]] = {}
    for kind in kinds:
        items = [o for o in kube.list(kind, where) if args.name in (None, o["metadata"]["name"])]
        if kind == CYCLE and args.charter:
            items = [o for o in items if o["spec"]["charterRef"]["name"] == args.charter]
        found[kind] = sorted(items, key=lambda o: (o["metadata"]["namespace"], cycle_sort_key(o)))
    if args.output in ("json", "yaml"):
        items = [o for kind in kinds for o in found[kind]]
        sys.stdout.write(dump({"apiVersion": "v1", "kind": "List", "items": items}, args.output))
        return 0
    if not any(found.values()):
        scope = "any namespace" if where is None else f"{namespace} namespace"
        print(f"No resources found in {scope}.", file=sys.stderr)
        return 0
    charters = [parse(RegenerationCharter, o) for o in found.get(CHARTER, [])]
    cycles = [parse(RegenerationCycle, o) for o in found.get(CYCLE, [])]
    text = get_table(
        charters, cycles, now(), wide=args.output == "wide", all_namespaces=where is None
    )
    sys.stdout.write(text)
    return 0


# -- watch --------------------------------------------------------------------------------------


def resolve(kube: Kube, namespace: str, reference: str) -> tuple[str, str]:
    """``rcy/NAME``, ``charter/NAME`` or a bare NAME (a cycle first, else a charter)."""
    prefix, sep, name = reference.rpartition("/")
    if sep:
        if prefix not in KIND_NAMES:
            fail(f"{reference!r}: expected NAME, rch/NAME or rcy/NAME")
        return KIND_NAMES[prefix], name
    for kind in (CYCLE, CHARTER):
        if kube.get(kind, namespace, reference) is not None:
            return kind, reference
    fail(f"no RegenerationCycle or RegenerationCharter named {reference!r} in {namespace}")


def show_changes(
    objects: Iterable[dict[str, Any]],
    render: Callable[[dict[str, Any]], str],
    out: TextIO,
    *,
    clear: bool,
    until_done: bool,
) -> int:
    """A fresh screen per version of the object that shows differently (a status write of a
    field not on the screen draws nothing); with ``until_done``, stop at a final cycle (exit 0
    when it succeeded or needed nothing, else 1)."""
    shown = None
    for obj in objects:
        screen = render(obj)
        if screen != shown:
            out.write((CLEAR if clear else "\n") + screen)
            out.flush()
            shown = screen
        phase = (obj.get("status") or {}).get("phase")
        if until_done and phase in FINAL_PHASES:
            return 0 if phase in DONE_WELL else 1
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    kube, namespace = kube_and_namespace(args)
    kind, name = resolve(kube, namespace, args.target)
    if args.until_done and kind == CHARTER:
        fail("--until-done waits for a cycle to end; a charter does not end")

    def render(obj: dict[str, Any]) -> str:
        if kind == CYCLE:
            return cycle_screen(parse(RegenerationCycle, obj), now())
        return charter_screen(parse(RegenerationCharter, obj), now())

    return show_changes(
        kube.watch(kind, namespace, name),
        render,
        sys.stdout,
        clear=sys.stdout.isatty(),
        until_done=args.until_done,
    )


# -- why ----------------------------------------------------------------------------------------


def phase_result(kube: Kube, namespace: str, cycle: str, phase: str) -> dict[str, Any] | None:
    """A phase's result ConfigMap (Job executor), or None: absent, unreadable or forbidden (the
    status alone still answers, so that is said on stderr and not fatal)."""
    try:
        found = kube.get("ConfigMap", namespace, result_name(cycle, phase))
        return None if found is None else parse_result(found, phase)
    except (ApiError, RegenerationError) as err:
        print(f"note: the {phase} result is not used: {err}", file=sys.stderr)
        return None


def cmd_why(args: argparse.Namespace) -> int:
    kube, namespace = kube_and_namespace(args)
    obj = kube.get(CYCLE, namespace, args.cycle)
    if obj is None:
        fail(f"no RegenerationCycle {namespace}/{args.cycle}")
    cycle = parse(RegenerationCycle, obj)
    explored = phase_result(kube, namespace, args.cycle, "explore") or {}
    developed = phase_result(kube, namespace, args.cycle, "develop") or {}
    sys.stdout.write(why_text(cycle, explored.get("exploration"), developed.get("solution")))
    return 0


# -- approve, reject, abort, retry --------------------------------------------------------------


def cmd_action(args: argparse.Namespace) -> int:
    kube, namespace = kube_and_namespace(args)
    action = ACTIONS[args.command]
    for _ in range(5):  # read, judge, patch at that version; again if it changed meanwhile
        obj = kube.get(CYCLE, namespace, args.cycle)
        if obj is None:
            fail(f"no RegenerationCycle {namespace}/{args.cycle}")
        cycle = parse(RegenerationCycle, obj)
        if already(action, cycle):
            print(f"cycle {args.cycle} was {action.done} already")
            return 0
        refused = refusal(action, cycle)
        if refused:
            raise Refused(refused)
        patch = annotation_patch(
            action,
            reason=getattr(args, "reason", None),
            user=kube.user,
            resource_version=obj["metadata"].get("resourceVersion"),
        )
        if kube.patch_unless_changed(CYCLE, namespace, args.cycle, patch):
            who = f" as {kube.user}" if kube.user else ""
            print(f"cycle {args.cycle} {action.done}{who} ({action.annotation})")
            return 0
    fail(f"cycle {args.cycle} kept changing while it was being annotated; try again")


# -- report -------------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    kube, namespace = kube_and_namespace(args)
    charter, cycles = charter_objects(kube, namespace, args.charter)
    write_report(charter, cycles, args.out)
    return 0
