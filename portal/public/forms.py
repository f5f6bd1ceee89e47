"""Forms of the public request flow, with the messages people see when an answer
needs fixing. Choice fields check their values themselves (``validate_choice=False``)
so that a tampered value gets the same plain message as a missing one. Each field
shows one message: a check that finds a problem stops the field's later checks.
Lengths come from the model's columns, so nothing valid here is too long to store.
Text answers follow ``portal.text_rules`` (one-line answers, names, the message),
and the agreement boxes count only the page's own tick as a yes."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from wtforms import (
    BooleanField,
    HiddenField,
    RadioField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    StopValidation,
    ValidationError,
)

from portal.booking.answers import CONTACT_METHODS, INTERESTS
from portal.booking.residency import ZIP_MALFORMED_MESSAGE, normalise_zip, zip_error_message
from portal.booking.scheduling import parse_slot_value
from portal.booking.verification import CODE_DIGITS, normalise_code
from portal.i18n import N_
from portal.i18n import lazy_gettext as _l
from portal.models import ConsultationRequest
from portal.phones import Phone
from portal.web.forms import (
    MULTI_LINE_FILTERS,
    ONE_LINE_FILTERS,
    AgreementField,
    PortalForm,
    multi_line,
    one_line,
    options,
    person_name,
)

YES_NO = options([("yes", _l("Yes")), ("no", _l("No"))])
NO_SLOT = "none"

# Common slips in the big providers' domains; a person confirms before we store one.
EMAIL_DOMAIN_TYPOS = {
    "gmail.com": ["gmial.com", "gamil.com", "gmai.com", "gmal.com", "gmaill.com", "gnail.com",
                  "gmail.co", "gmail.con", "gmail.cm", "gmail.om", "gmailcom", "gmali.com"],
    "hotmail.com": ["hotmial.com", "hotmal.com", "hotmai.com", "hotmil.com", "hotmail.co",
                    "hotmail.con", "homail.com"],
    "yahoo.com": ["yaho.com", "yahooo.com", "yhoo.com", "yahoo.co", "yahoo.con", "yaoo.com"],
    "outlook.com": ["outlok.com", "outloo.com", "outlook.co", "outlook.con", "otlook.com"],
    "icloud.com": ["iclod.com", "icoud.com", "icloud.co", "icloud.con", "iclould.com",
                   "icould.com"],
    "aol.com": ["aol.co", "aol.con", "aoll.com"],
    "comcast.net": ["comcast.com", "comcat.net"],
}
_TYPO_TO_DOMAIN = {typo: right for right, typos in EMAIL_DOMAIN_TYPOS.items() for typo in typos}


def translated(labels: dict[str, str]):
    """Options whose labels (marked with ``N_``) read in the visitor's language."""
    return options((key, _l(label)) for key, label in labels.items())


def without_repeats(values):
    """Each ticked box once: repeats come from scripts, and would overflow the column."""
    return list(dict.fromkeys(values)) if isinstance(values, list) else values


def column_length(column) -> int:
    return column.type.length


NAME_MAX = column_length(ConsultationRequest.first_name)
PREFERRED_NAME_MAX = column_length(ConsultationRequest.preferred_name)
# The payment question's options as the page words them.
PAYMENT_CHOICES = {"self_pay": N_("I'll pay for sessions myself (self-pay)"),
                   "insurance": N_("I'd like to use my health insurance"),
                   "not_sure": N_("I'm not sure yet")}
EMAIL_MAX = column_length(ConsultationRequest.email)
ZIP_MAX = column_length(ConsultationRequest.zip_code)
EMAIL_TOO_LONG = _l("Your email address must be %(n)s characters or fewer", n=EMAIL_MAX)


class MaxLength(Length):
    """Length that stops the field's later checks, so a person reads one message."""

    def __init__(self, limit: int, message: str) -> None:
        super().__init__(max=limit, message=message)

    def __call__(self, form, field):
        try:
            super().__call__(form, field)
        except ValidationError as error:
            raise StopValidation(error.args[0]) from None


def unanswered_or_one_of(allowed, message):
    """An optional choice: unanswered (missing, or empty) is fine, anything else must be
    one of ``allowed``. (WTForms' Optional would wave through text that is only white
    space, such as a control character, and leave it as the answer.)"""
    def check(form, field):
        if field.data in (None, ""):
            field.data = None
            raise StopValidation()
        if field.data not in allowed:
            raise StopValidation(message)
    return check


def one_of(allowed, message):
    def check(form, field):
        values = field.data if isinstance(field.data, list) else [field.data]
        if any(value not in allowed for value in values if value is not None):
            raise ValidationError(message)
    return check


def suggested_email(address: str) -> str | None:
    """The address with a likely domain typo fixed, or None."""
    local, _, domain = address.rpartition("@")
    right = _TYPO_TO_DOMAIN.get(domain.lower())
    return f"{local}@{right}" if local and right else None


class MultiCheckboxField(SelectMultipleField):
    """Several checkboxes; the template's choices macro draws them."""


def email_check(form, field):
    try:
        # No SMTPUTF8: our mail goes out without it, so a non-ASCII mailbox name
        # could never receive the confirmation (and would break the sender).
        result = validate_email(field.data, check_deliverability=False,
                                allow_smtputf8=False)
    except EmailNotValidError:
        if not field.data.rpartition("@")[0].isascii():
            raise ValidationError(_l("Enter an email address using only English "
                                     "letters, numbers and symbols like . _ -")) from None
        raise ValidationError(
            _l("Enter an email address in the correct format, like name@example.com")) from None
    # The ASCII form (xn--) of an internationalised domain is what SMTP can use.
    if len(result.ascii_email or result.normalized) > EMAIL_MAX:  # xn-- can lengthen it
        raise ValidationError(EMAIL_TOO_LONG)
    field.data = result.ascii_email or result.normalized
    suggestion = suggested_email(field.data)
    if suggestion and not form.email_as_typed.data:
        form.email_suggestion = suggestion
        raise ValidationError(_l("Did you mean %(suggestion)s? Correct your email address, "
                                 "or check \u201cMy email address is right as I typed "
                                 "it\u201d", suggestion=suggestion))


def phone_check(form, field):
    phone = Phone.parse(field.data)
    if phone is None or not phone.is_us:
        raise ValidationError(_l("Enter a US phone number, like (415) 555-0123"))
    field.data = phone.e164


class EligibilityForm(PortalForm):
    """Step 1. No state is asked: the ZIP says it (portal.booking.residency)."""

    ca_resident = RadioField(
        _l("Do you live in California?"), choices=YES_NO, validate_choice=False,
        validators=[InputRequired(_l("Select yes if you live in California")),
                    one_of({"yes", "no"}, _l("Select yes or no"))],
    )
    zip_code = StringField(_l("Your home ZIP code"), filters=ONE_LINE_FILTERS,
                           validators=[MaxLength(ZIP_MAX, ZIP_MALFORMED_MESSAGE),
                                       one_line(_l("your ZIP code"))])
    in_california = RadioField(
        _l("Will you be in California during the consultation?"), choices=YES_NO,
        validate_choice=False,
        validators=[InputRequired(_l("Select yes if you'll be in California during the "
                                     "consultation")),
                    one_of({"yes", "no"}, _l("Select yes or no"))],
    )
    adult = RadioField(_l("Are you 18 or older?"), choices=YES_NO, validate_choice=False,
                       validators=[InputRequired(_l("Select yes if you are 18 or older")),
                                   one_of({"yes", "no"}, _l("Select yes or no"))])

    def validate_zip_code(self, field):
        if not field.data:
            if self.ca_resident.data == "no":
                return  # someone who lives elsewhere (abroad too) may have none to give
            raise ValidationError(_l("Enter your ZIP code, like 94110"))
        if normalise_zip(field.data) is None:
            raise ValidationError(ZIP_MALFORMED_MESSAGE)
        if self.ca_resident.data == "yes":
            # "I live in California" with a ZIP that isn't: a typo, or the wrong answer.
            message = zip_error_message(field.data)
            if message is not None:
                raise ValidationError(message)

    @property
    def under_18(self) -> bool:
        return self.adult.data == "no"


def yes_no(question: str, required: str | None = None) -> RadioField:
    """A yes/no question; it must be answered when ``required`` (its message) is given."""
    if required is None:
        return RadioField(question, choices=YES_NO, validate_choice=False, validators=[
            unanswered_or_one_of({"yes", "no"}, _l("Select yes or no"))])
    return RadioField(question, choices=YES_NO, validate_choice=False,
                      validators=[InputRequired(required), one_of({"yes", "no"}, required)])


class TimeForm(PortalForm):
    """Step 2. The therapist is chosen by links or a GET form on the page (its
    ``?therapist=``); this form carries the choice the times were shown for."""

    therapist = HiddenField(default="any")
    slot = RadioField(_l("Choose a time"), validate_choice=False, validators=[
        InputRequired(_l("Choose a time, or choose \u201cNone of these times work\u201d"))])
    # Only meaningful with slot=none (the view ignores it otherwise). Any value but
    # "false" counts: it asks for an email, and agrees to nothing.
    waitlist = BooleanField(_l("Email me if an earlier time opens"))

    def validate_slot(self, field):
        if field.data != NO_SLOT and parse_slot_value(field.data) is None:
            raise ValidationError(_l("Choose one of the times shown"))

    @property
    def slot_start(self):
        return None if self.slot.data == NO_SLOT else parse_slot_value(self.slot.data)


MEETING_CHOICES = {"phone": N_("By phone: the therapist calls you"),
                   "video": N_("By video: you join a private video call")}


class AboutForm(PortalForm):
    """Step 3. ``video_offered``: whether the chosen therapist has a video room."""

    # DataRequired after the strip filter: an answer of only spaces is no answer.
    # The filters compose (NFC) before the length check: the column counts stored
    # characters, not the keystrokes of a keyboard that sends accents separately.
    first_name = StringField(_l("First name"), filters=ONE_LINE_FILTERS, validators=[
        DataRequired(_l("Enter your first name")),
        MaxLength(NAME_MAX, _l("Your first name must be %(n)s characters or fewer", n=NAME_MAX)),
        person_name(_l("your first name"))])
    last_name = StringField(_l("Last name"), filters=ONE_LINE_FILTERS, validators=[
        DataRequired(_l("Enter your last name")),
        MaxLength(NAME_MAX, _l("Your last name must be %(n)s characters or fewer", n=NAME_MAX)),
        person_name(_l("your last name"))])
    email = StringField(_l("Email address"), filters=ONE_LINE_FILTERS, validators=[
        DataRequired(_l("Enter your email address")),
        MaxLength(EMAIL_MAX, EMAIL_TOO_LONG),
        one_line(_l("your email address"))])
    email_as_typed = AgreementField(_l("My email address is right as I typed it"))
    phone = StringField(_l("Phone number"), filters=ONE_LINE_FILTERS, validators=[
        DataRequired(_l("Enter your phone number")),
        MaxLength(30, _l("Enter a US phone number, like (415) 555-0123")),
        one_line(_l("your phone number"))])
    meeting = RadioField(
        _l("How would you like to meet?"), choices=translated(MEETING_CHOICES),
        validate_choice=False,
        validators=[InputRequired(_l("Choose how you'd like to meet")),
                    one_of(set(MEETING_CHOICES), _l("Choose how you'd like to meet"))],
    )

    def __init__(self, *args, video_offered: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.video_offered = video_offered
        if not video_offered:
            self.meeting.choices = [c for c in self.meeting.choices if c.value == "phone"]

    validate_email = email_check
    validate_phone = phone_check

    def validate_meeting(self, field):
        if field.data == "video" and not self.video_offered:
            raise ValidationError(_l("Video isn't offered for this time, so you'll meet by phone"))


class CheckForm(PortalForm):
    """Step 4: the two agreements, the honeypot and the journey's one-time token."""

    # Agreement boxes: only the value the page's checkbox sends is a yes.
    consent_privacy = AgreementField(
        _l("I agree that the practice may store these details to arrange my consultation"),
        validators=[DataRequired(_l("Agree to the privacy notice so we can arrange "
                                    "your consultation"))])
    ack_not_emergency = AgreementField(
        _l("I understand that this form is not for emergencies"),
        validators=[DataRequired(_l("Confirm that you understand this form is not for "
                                    "emergencies"))])
    website = StringField(_l("Leave this field empty"))
    form_token = HiddenField()


class PrepareForm(PortalForm):
    """"Help us prepare (optional)", after the code: nothing here is required."""

    preferred_name = StringField(_l("What should we call you?"), filters=ONE_LINE_FILTERS,
                                 validators=[
        MaxLength(PREFERRED_NAME_MAX,
                  _l("The name we should call you must be %(n)s characters or fewer",
                     n=PREFERRED_NAME_MAX)),
        person_name(_l("the name we should call you"))])
    preferred_contact = RadioField(
        _l("How would you like us to contact you?"), choices=translated(CONTACT_METHODS),
        validate_choice=False,
        validators=[unanswered_or_one_of(set(CONTACT_METHODS),
                                         _l("Choose how you'd like us to contact you"))],
    )
    ok_to_text = yes_no(_l("May we send you text messages?"))
    # Consent to texts (DESIGN, "Text messages"): never ticked for the client, and only
    # counted with a yes above (portal.texts.consent keeps its wording's version).
    sms_consent = AgreementField(_l(
        "Text me reminders about this consultation. Up to 3 messages. Reply STOP to stop, "
        "HELP for help. Message and data rates may apply."))
    ok_to_voicemail = yes_no(_l("May we leave a voicemail that says the name of our practice?"))
    interests = MultiCheckboxField(
        _l("What would you like help with?"), choices=translated(INTERESTS),
        validate_choice=False,
        filters=[without_repeats],
        validators=[one_of(set(INTERESTS), _l("Choose from the options shown"))],
    )
    message = TextAreaField(
        _l("Anything you'd like us to know"), filters=MULTI_LINE_FILTERS,
        validators=[MaxLength(2000, _l("Your message must be 2,000 characters or fewer")),
                    multi_line(_l("your message"))])
    payment = RadioField(
        _l("How do you expect to pay for therapy?"), choices=translated(PAYMENT_CHOICES),
        validate_choice=False,
        validators=[unanswered_or_one_of(set(PAYMENT_CHOICES),
                                         _l("Choose how you expect to pay for therapy"))],
    )

    def validate_ok_to_text(self, field):
        if field.data == "no" and self.preferred_contact.data == "text":
            raise ValidationError(_l("You chose text message as the way to contact you: "
                                     "select yes, or choose another way to contact you"))


class RescheduleForm(PortalForm):
    slot = RadioField(_l("Choose a new time"), validate_choice=False, validators=[
        InputRequired(_l("Choose a new time"))])
    # "any" or the booking's own therapist: which times the page showed.
    therapist = HiddenField()

    def validate_slot(self, field):
        if parse_slot_value(field.data) is None:
            raise ValidationError(_l("Choose one of the times shown"))

    @property
    def new_start(self):
        return parse_slot_value(self.slot.data)


REASON_MAX = 2000


class CancelForm(PortalForm):
    """The "Are you sure?" page: the button is the answer, the reason is optional.
    The reason goes to staff as an internal note, never into any email."""

    reason = TextAreaField(
        _l("Why are you canceling?"), filters=MULTI_LINE_FILTERS,
        validators=[MaxLength(REASON_MAX, _l("Your reason must be %(n)s characters or fewer",
                                             n=f"{REASON_MAX:,}")),
                    multi_line(_l("your reason"))])


class VerifyForm(PortalForm):
    """Step 3: the code from the email. The "send a new code" and "change my email"
    buttons post the same form; only the confirm button judges the code."""

    code = StringField(_l("Confirmation code"), filters=ONE_LINE_FILTERS, validators=[
        DataRequired(_l("Enter the 6-digit code from the email")),
        MaxLength(20, _l("The code is 6 digits, like 123456"))])

    def validate_code(self, field):
        digits = normalise_code(field.data)  # as verification.confirm will read it
        if not (len(digits) == CODE_DIGITS and digits.isascii() and digits.isdigit()):
            raise ValidationError(_l("The code is 6 digits, like 123456"))
