"""Form pieces that both the public flow and the back office use: choice options,
the checkbox whose tick means yes, and the text checks of ``portal.text_rules``
turned into filters and validators with the messages people see; and ``PortalForm``,
the base of every form."""

from functools import lru_cache

from babel import support
from flask import request
from flask_babel import get_locale
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto
from markupsafe import Markup, escape
from wtforms import BooleanField
from wtforms.fields.choices import SelectChoice
from wtforms.i18n import messages_path
from wtforms.validators import StopValidation
from wtforms.widgets import Input, TextArea
from wtforms.widgets.core import clean_key

from portal import text_rules
from portal.i18n import lazy_gettext as _l


@lru_cache(maxsize=8)
def _wtforms_catalog(locale: str) -> support.Translations:
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


class _WTFormsMessages:
    """WTForms' own messages ("Not a valid choice.") in the page's language. Flask-WTF
    reads the catalog from disk on every request; here each is read once."""

    @staticmethod
    def _catalog() -> support.Translations:
        locale = get_locale()
        return _wtforms_catalog(str(locale) if locale is not None else "en")

    def gettext(self, string: str) -> str:
        return self._catalog().ugettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._catalog().ungettext(singular, plural, n)


WTFORMS_MESSAGES = _WTFormsMessages()


SUBMIT_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class PortalForm(FlaskForm):
    """Flask-WTF's form (CSRF, the request's data) with WTForms' messages from a
    catalog kept in memory, reading the posted form fields and nothing else.

    Flask-WTF would also read uploaded files into the fields (a file in a text field
    has no length: a TypeError) and a JSON body (a lone surrogate in it cannot be
    encoded back into the page). ``portal.web.edge`` refuses both before any view; here
    they are never read either."""

    class Meta(FlaskForm.Meta):
        def get_translations(self, form):
            return WTFORMS_MESSAGES

        def render_field(self, field, render_kw):
            """WTForms' rendering of a text box, hidden field or text area, with the same
            HTML, through ``attributes``; any other widget as WTForms renders it."""
            render_kw = {clean_key(k): v for k, v in render_kw.items()}
            if getattr(field, "render_kw", None):
                render_kw = {**{clean_key(k): v for k, v in field.render_kw.items()},
                             **render_kw}
            widget = type(field.widget)
            if widget.__call__ is Input.__call__ and widget.html_params is Input.html_params:
                return _input(field, field.widget, render_kw)
            if widget.__call__ is TextArea.__call__:
                return _text_area(field, render_kw)
            return field.widget(field, **render_kw)

        def wrap_formdata(self, form, formdata):
            if formdata is not _Auto:
                return formdata
            if request.method in SUBMIT_METHODS and request.form:
                return request.form
            return None


def attributes(**kwargs) -> str:
    """WTForms' ``html_params``, the same output for a fraction of its cost: it builds
    each attribute through ``Markup.format``, which a page of a few fields paid for
    dozens of times on every visit."""
    params = []
    for key, value in sorted(kwargs.items()):
        key = clean_key(key)
        if value is True:
            params.append(key)
        elif value is not False:
            params.append(f'{key}="{str(escape(value)).replace(chr(34), "&quot;")}"')
    return " ".join(params)


def _validation_attributes(field, widget, kwargs: dict) -> None:
    flags = getattr(field, "flags", {})
    for key in dir(flags):
        if key in widget.validation_attrs and key not in kwargs:
            value = getattr(flags, key)
            kwargs[key] = value() if callable(value) else value


def _input(field, widget: Input, kwargs: dict) -> Markup:
    """``wtforms.widgets.Input.__call__``, through ``attributes``."""
    kwargs.setdefault("id", field.id)
    kwargs.setdefault("type", widget.input_type)
    if "value" not in kwargs:
        kwargs["value"] = field._value()
    datalist = getattr(field, "_datalist", None)
    if datalist is not None and "list" not in kwargs:
        kwargs["list"] = datalist if isinstance(datalist, str) else datalist.id
    _validation_attributes(field, widget, kwargs)
    return Markup(f"<input {attributes(name=field.name, **kwargs)}>")  # noqa: S704 - escaped


def _text_area(field, kwargs: dict) -> Markup:
    """``wtforms.widgets.TextArea.__call__``, through ``attributes``."""
    kwargs.setdefault("id", field.id)
    _validation_attributes(field, TextArea, kwargs)
    return Markup(f"<textarea {attributes(name=field.name, **kwargs)}>\r\n"  # noqa: S704
                  f"{escape(field._value())}</textarea>")


# What templates/_forms.html's checkbox macro sends for a ticked box.
CHECKED_VALUE = "y"


def options(pairs) -> list[SelectChoice]:
    """Select and radio options as WTForms 3.3 wants them (plain tuples are deprecated)."""
    return [SelectChoice(value, label) for value, label in pairs]


class AgreementField(BooleanField):
    """A checkbox that is ticked only when the page's own value comes back.

    WTForms' BooleanField counts every value but ``false``, ``""`` and a missing
    one as ticked, so a script posting ``consent_privacy=no`` (or ``0``, ``off``)
    would be recorded as agreeing. A tick that means consent or "I understand"
    must be the box the person saw and ticked, nothing else.
    """

    def process_formdata(self, valuelist):
        self.data = valuelist == [CHECKED_VALUE]


# What trimming takes off the ends of an answer: spaces (of any script), tabs and line
# breaks. Not the control characters str.strip() also counts as white space (U+001C to
# U+001F, U+0085): those are refused by the text rules, never silently dropped.
TRIMMED = " \t\n\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008" \
    "\u2009\u200a\u202f\u205f\u3000"


def strip(value):
    return value.strip(TRIMMED) if isinstance(value, str) else value


# Filters for every one-line text field: trim, then compose, so that length limits
# and checks see what will be stored.
ONE_LINE_FILTERS = (strip, text_rules.nfc)
MULTI_LINE_FILTERS = (strip, text_rules.normalise_line_endings, text_rules.nfc)

# {noun} is a phrase such as "your first name" (translated by the caller, like these).
_MESSAGES = {
    text_rules.LINE_BREAK: _l("Enter {noun} on one line, without line breaks or tabs"),
    text_rules.INVISIBLE: _l("{Noun} contains invisible characters, which can come from "
                             "copying and pasting. Type it in again"),
    text_rules.DIGIT: _l("{Noun} can only use letters, not numbers"),
    text_rules.SYMBOL: _l("{Noun} can only use letters, spaces, hyphens (-), "
                          "apostrophes (') and periods (.)"),
    text_rules.NO_LETTER: _l("Enter {noun} using letters"),
    text_rules.UNREADABLE: _l("Some characters in {noun} could not be read. Type it in "
                              "again"),
}


def _validator(rule, noun: str):
    """A WTForms validator that stops the field's checks with a message about ``noun``
    ("your first name") when ``rule`` finds a problem. Words are chosen when it runs,
    in the visitor's language."""
    def check(form, field):
        if isinstance(field.data, str) and field.data:
            problem = rule(field.data)
            if text_rules.unreadable(field.data):
                # What arrived was not text (not UTF-8): never shown back as it came.
                problem = text_rules.UNREADABLE
                field.data = ""
            if problem:
                said = str(noun)
                raise StopValidation(str(_MESSAGES[problem]).format(
                    noun=said, Noun=said[:1].upper() + said[1:]))
    return check


def one_line(noun: str):
    """Refuses line breaks, tabs, and control and format characters (zero-width, bidi)."""
    return _validator(text_rules.one_line_problem, noun)


def multi_line(noun: str):
    """Refuses control and format characters but line breaks and tabs."""
    return _validator(text_rules.multi_line_problem, noun)


def person_name(noun: str):
    """The one-line rule, then letters of any script, spaces, hyphens, apostrophes, periods."""
    return _validator(text_rules.name_problem, noun)
