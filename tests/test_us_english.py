"""Every word a person reads is US English: the text of every template (its words and
the strings it translates or prints) and every string in the code (labels, messages,
email subjects), with identifiers, comments and docstrings left out. A stored value
of the contract (the status ``cancelled``) is a key, not words: it may keep its
spelling where it is a value, never where a person reads it ("canceled")."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BRITISH = re.compile(
    r"(?<![\w./])(licence|travell\w*|colour\w*|behaviour\w*|favour\w*|centre|organis\w*|"
    r"recognis\w*|apologis\w*|realis\w*|enrol|enrols|enrolment|cheque|programme|"
    r"neighbour\w*|analys(?:e|ed|ing)|catalogue|judgement|cancell(?:ed|ing))(?!\w)",
    re.IGNORECASE)
# Values of protocols the portal speaks, never shown as words: iCalendar's STATUS.
PROTOCOL_VALUES = {"CANCELLED"}
# Text stored before the portal spoke US English throughout, still recognized when read.
STORED_EARLIER = {("portal/models.py", "cancelling")}


STRING = re.compile(r"""(["'])((?:\\.|(?!\1).)*)\1""", re.S)


def template_text(source: str) -> str:
    """What a template can show: its text without comments and HTML tags, and the
    strings in its tags and expressions (``_("...")``, ``"a" if x else "b"``); a string
    that is a key or a stored value (``status == "cancelled"``) is not words."""
    source = re.sub(r"\{#.*?#\}", " ", source, flags=re.S)
    shown = []

    def strings(match: re.Match) -> str:
        shown.extend(text for _, text in STRING.findall(match.group(0))
                     if not is_key(text))
        return " "

    source = re.sub(r"\{%.*?%\}|\{\{.*?\}\}", strings, source, flags=re.S)
    return " ".join([re.sub(r"<[^>]*>", " ", source), *shown])


def is_key(text: str) -> bool:
    return bool(re.fullmatch(r"[a-z_.:]+", text))  # also an outbox key's prefix, "cancelled:"


def code_strings(source: str) -> list[str]:
    """String constants of a module that are not docstrings."""
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def british_words(text: str) -> list[str]:
    if is_key(text):  # a key or stored value, not words
        return []
    return [m.group(0) for m in BRITISH.finditer(text) if m.group(0) not in PROTOCOL_VALUES]


TEMPLATES = sorted(p for p in (ROOT / "templates").rglob("*") if p.suffix in {".html", ".txt"})
MODULES = sorted(p for p in (ROOT / "portal").rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_templates_speak_us_english(path):
    assert british_words(template_text(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_strings_in_the_code_speak_us_english(path):
    where = str(path.relative_to(ROOT))
    found = [word for text in code_strings(path.read_text(encoding="utf-8"))
             for word in british_words(text) if (where, word) not in STORED_EARLIER]
    assert found == []


def test_the_check_reads_what_a_template_shows_and_leaves_its_keys():
    assert british_words(template_text('<p>{{ _("Your consultation is cancelled.") }}</p>')) \
        == ["cancelled"]
    assert british_words(template_text("{% trans %}It was cancelled{% endtrans %}")) \
        == ["cancelled"]
    assert british_words(template_text(
        "<dd>{% if c.status == 'cancelled' %}{{ _('Canceled') }}{% endif %}</dd>"
        "{{ c.cancelled_at }}")) == []
    assert british_words("Status: Cancelled") == ["Cancelled"]
    assert british_words("cancelled") == [] and british_words("STATUS:CANCELLED") == []


def test_the_check_finds_british_spelling():
    assert british_words(template_text("<label>Licence type</label> {{ t.licence_type }}")) \
        == ["Licence"]
    assert british_words("Travelling? Enrol now") == ["Travelling", "Enrol"]
