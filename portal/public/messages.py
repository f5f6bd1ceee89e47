"""What the public pages say when a submit needs another go, shared by the request
flow and the manage pages so that both speak alike."""

from __future__ import annotations

from flask_babel import gettext

from portal.i18n import lazy_gettext as _l

CSRF_MESSAGE = _l("This page was open for a while, so for your security we need you to "
                  "submit again. Everything you typed is still here.")
CSRF_MESSAGE_NO_ANSWERS = _l("This page was open for a while, so for your security we need "
                             "you to press the button again.")
FORM_EXPIRED_MESSAGE = _l("Something went wrong with this form. Please check your answers and "
                          "submit again.")
SLOT_TAKEN_MESSAGE = _l("That time was just taken \u2014 please pick another")
THERAPIST_GONE_MESSAGE = _l("That therapist isn't taking new consultations at the moment. "
                            "Please choose a time with any of our therapists")
TOO_FAST_MESSAGE = _l("Something went wrong when you sent your request. Please check your "
                     "answers and try again.")
FORM_USED_MESSAGE = _l("This form was sent already. If you meant to make a new request, "
                       "check your answers and send it again.")


def hold_limit_message(phone: str) -> str:
    """For a visitor who may not hold one more unconfirmed time (portal.booking.holds): what to
    do instead, never why (that would tell them about other people's requests)."""
    return gettext("We can't hold a time for you online right now. Choose \u201cNone of "
                   "these times work\u201d and we'll contact you to arrange one, or call us "
                   "at %(phone)s. If you need help now, call or text 988.", phone=phone)


def friendly_csrf_error(form, message: str = CSRF_MESSAGE) -> None:
    """Swap Flask-WTF's token message for one that says nothing was lost."""
    token_field = getattr(form, "csrf_token", None)  # absent when CSRF is switched off
    if token_field is not None and token_field.errors:
        token_field.errors = []
        form.form_errors.append(message)
