"""Request statuses, outbox states and text states are types (portal.booking.statuses,
portal.messages.outbox_states, portal.texts.states): no other module spells one out,
in Python or in SQL text, so a renamed or added status has one place to change and a
typo cannot hide in a query."""

from __future__ import annotations

import ast
from pathlib import Path

from portal import models
from portal.booking.statuses import (
    ALL_STATUSES,
    HOLDS_SLOT_SQL,
    OPEN_SQL,
    OPEN_STATUSES,
    RELEASED_STATUSES,
    STAFF_STATUSES,
    STATUS_LABELS,
    RequestStatus,
)
from portal.messages.outbox_states import OUTBOX_STATES, UNSENT, OutboxState

ROOT = Path(__file__).resolve().parent.parent
PORTAL = ROOT / "portal"
HOMES = {"portal/booking/statuses.py", "portal/messages/outbox_states.py",
         "portal/texts/states.py"}
WORDS = {status.value for status in RequestStatus} | {state.value for state in OutboxState}
# Where the same word means something else, by module: never a status there.
OTHER_MEANINGS = {
    "portal/public/views.py": {"pending"},  # the session key of the visitor's pending request
    "portal/admin/wording.py": {"completed"},  # an export's audit detail: it ran to the end
    "portal/encryption.py": {"new"},  # a value as re-encrypted, beside the old one
    "portal/texts/staff.py": {"sent", "failed"},  # the dashboard's figures for texts
}


def docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def stray_literals(source: str, allowed: set[str] = frozenset()) -> list[tuple[int, str]]:
    """(line, text) of every string constant that is a status or state, or that holds
    one in SQL quotes (``status IN ('new', …)``); docstrings aside."""
    tree = ast.parse(source)
    skip = docstrings(tree)
    stray = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) \
                or id(node) in skip:
            continue
        words = WORDS - allowed
        if node.value in words or any(f"'{word}'" in node.value for word in words):
            stray.append((node.lineno, node.value))
    return stray


def test_no_status_or_state_is_spelled_out_outside_its_type():
    stray = []
    for path in sorted(PORTAL.rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name in HOMES or name.startswith("portal/migrations/"):
            continue
        for line, text in stray_literals(path.read_text(), OTHER_MEANINGS.get(name, set())):
            stray.append(f"{name}:{line}: {text!r}")
    assert stray == []


def test_the_check_finds_a_literal_in_python_and_in_sql():
    assert stray_literals('x = status == "queued"\n') == [(1, "queued")]
    assert stray_literals("""q = "WHERE status IN ('new')"\n""") == [(1, "WHERE status IN ('new')")]
    assert stray_literals('"""Where status IN (\'new\')."""\ny = "newer"\n') == []


def test_the_values_are_what_the_database_stores():
    assert [s.value for s in ALL_STATUSES] == [
        "pending", "new", "contacted", "scheduled", "completed", "no_show", "cancelled",
        "not_a_fit"]
    assert set(ALL_STATUSES) == set(RequestStatus)
    assert list(OUTBOX_STATES) == ["queued", "sending", "sent", "failed", "superseded"]
    assert UNSENT == ("queued", "sending")
    # The partial indexes keep the exact conditions the migrations created.
    assert OPEN_SQL == "status IN ('new', 'contacted', 'scheduled')"
    assert HOLDS_SLOT_SQL == "status NOT IN ('cancelled', 'not_a_fit') AND slot_start IS NOT NULL"


def test_the_groups_fit_together():
    assert set(STAFF_STATUSES) == set(STATUS_LABELS) == set(RequestStatus) - {"pending"}
    assert not set(OPEN_STATUSES) & set(RELEASED_STATUSES)
    assert "pending" not in STAFF_STATUSES


def test_a_member_matches_the_stored_text():
    row = models.ConsultationRequest(status="no_show")
    assert row.status == RequestStatus.NO_SHOW
    assert row.status_label == "No-show"
    assert STATUS_LABELS[row.status] == "No-show"


def is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_no_module_reaches_into_another_modules_private_names():
    """What modules share is public and named for what it is: no ``from portal.x import
    _y`` and no ``x._y`` on a portal module (a module's own names aside)."""
    reached = []
    for path in sorted(PORTAL.rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name.startswith("portal/migrations/"):
            continue
        tree = ast.parse(path.read_text())
        modules = {alias.asname or alias.name for node in ast.walk(tree)
                   if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("portal")
                   for alias in node.names if is_module(f"{node.module}.{alias.name}")}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("portal"):
                reached += [f"{name}:{node.lineno}: {alias.name}" for alias in node.names
                            if alias.name.startswith("_")]
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__") and isinstance(node.value, ast.Name) \
                    and node.value.id in modules:
                reached.append(f"{name}:{node.lineno}: {node.value.id}.{node.attr}")
    assert reached == []
