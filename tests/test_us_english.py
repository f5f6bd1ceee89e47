"""Every word a person reads is US English: the text of every template and every
string in the code (labels, messages, email subjects), with identifiers, comments
and docstrings left out."""

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
# A status value of the public contract, shown in the back office as a word.
CONTRACT_VALUES = {"cancelled"}
# Text stored before the portal spoke US English throughout, still recognized when read.
STORED_EARLIER = {("portal/models.py", "cancelling")}


def template_text(source: str) -> str:
    """What a template can show: without Jinja tags, expressions, comments or HTML tags."""
    source = re.sub(r"\{#.*?#\}", " ", source, flags=re.S)
    source = re.sub(r"\{%.*?%\}", " ", source, flags=re.S)
    source = re.sub(r"\{\{.*?\}\}", " ", source, flags=re.S)
    return re.sub(r"<[^>]*>", " ", source)


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
    if re.fullmatch(r"[a-z_.]+", text):  # a key or stored value, not words
        return []
    return [m.group(0) for m in BRITISH.finditer(text)
            if m.group(0).lower() not in CONTRACT_VALUES]


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


def test_the_check_finds_british_spelling():
    assert british_words(template_text("<label>Licence type</label> {{ t.licence_type }}")) \
        == ["Licence"]
    assert british_words("Travelling? Enrol now") == ["Travelling", "Enrol"]
