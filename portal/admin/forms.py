"""Back-office forms. Filter forms read the query string and carry no CSRF token
(they change nothing); every form that changes something is a FlaskForm with one.
What staff type is stored and shown (and a therapist's name and licence reach
clients' emails), so it follows the same text rules as the public forms."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from sqlalchemy import Row, select
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    EmailField,
    Form,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import Email, InputRequired, Length, Optional, ValidationError

from portal.admin.listing import SORTS
from portal.booking.scheduling import WEEKDAYS
from portal.booking.statuses import STATUS_LABELS
from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.staff.models import ROLES
from portal.web.forms import (
    MULTI_LINE_FILTERS,
    ONE_LINE_FILTERS,
    PortalForm,
    multi_line,
    one_line,
    options,
)


def therapist_options(label: Callable[[Row], str], *,
                      active_only: bool = False) -> list[tuple[int, str]]:
    """``(id, label(row))`` for each therapist, by name: one query of the columns
    ``label`` may read (``name``, ``licence_type``, ``active``)."""
    stmt = select(Therapist.id, Therapist.name, Therapist.licence_type, Therapist.active)
    if active_only:
        stmt = stmt.where(Therapist.active.is_(True))
    return [(row.id, label(row)) for row in db.session.execute(stmt.order_by(Therapist.name))]


class RequestFilterForm(Form):
    q = StringField("Search", validators=[Optional(), Length(max=100)])
    status = SelectField("Status", choices=options([("", "Any status"), *STATUS_LABELS.items()]),
                         validate_choice=False)
    therapist = SelectField("Therapist", validate_choice=False)
    received_from = DateField("Received from", validators=[Optional()])
    received_to = DateField("Received to", validators=[Optional()])
    booked_from = DateField("Booked from", validators=[Optional()])
    booked_to = DateField("Booked to", validators=[Optional()])
    sort = SelectField("Sort", choices=options((key, label) for key, (label, _) in SORTS.items()),
                       validate_choice=False)


class StatusForm(PortalForm):
    status = SelectField("New status", choices=options(STATUS_LABELS.items()),
                         validators=[InputRequired("Choose a status.")])
    note = TextAreaField("Note", filters=MULTI_LINE_FILTERS,
                         validators=[Optional(), Length(max=4000), multi_line("the note")])
    no_show_note = BooleanField("If you mark it no-show: email the client a gentle note "
                                "with a link to book again with the same therapist")


class DeclineForm(PortalForm):
    tell_client = RadioField("Tell the client?", default="yes", choices=options(
        [("yes", "Yes, email them a kind note with places that can help (recommended)"),
         ("no", "No, don't email them")]),
        validators=[InputRequired("Choose whether to tell the client.")])
    personal_line = StringField("A personal line for the client", filters=ONE_LINE_FILTERS,
                                validators=[Optional(), Length(max=300, message=(
                                    "Keep the personal line to 300 characters or fewer.")),
                                    one_line("the personal line")])
    note = TextAreaField("Internal note", filters=MULTI_LINE_FILTERS,
                         validators=[Optional(), Length(max=4000), multi_line("the note")])
    # The signed text that was previewed: what is sent must be what staff saw.
    previewed = HiddenField()


class NoteForm(PortalForm):
    body = TextAreaField("Internal note", filters=MULTI_LINE_FILTERS, validators=[
        InputRequired("Write the note."), Length(max=4000), multi_line("the note")])


class ReassignForm(PortalForm):
    therapist_id = SelectField("Therapist", coerce=int, validate_choice=True)


class RescheduleForm(PortalForm):
    slot = SelectField("New time", validate_choice=True)


class TherapistForm(PortalForm):
    # The name and licence reach clients' emails and calendar files: one line each.
    name = StringField("Name", filters=ONE_LINE_FILTERS, validators=[
        InputRequired("Enter the name."), Length(max=120), one_line("the name")])
    email = EmailField("Notification email", filters=ONE_LINE_FILTERS, validators=[
        InputRequired("Enter the email address for notices."), one_line("the email address"),
        Email("Enter an email address like name@example.com."), Length(max=254)])
    licence_type = StringField("License type", filters=ONE_LINE_FILTERS, validators=[
        InputRequired("Enter the license type, like LMFT."), Length(max=40),
        one_line("the license type")])
    licence_number = StringField("License number", filters=ONE_LINE_FILTERS, validators=[
        InputRequired("Enter the license number."), Length(max=40),
        one_line("the license number")])
    bio = TextAreaField("Short bio", filters=MULTI_LINE_FILTERS, validators=[
        Optional(), Length(max=2000), multi_line("the bio")])
    bio_es = TextAreaField("Short bio in Spanish", filters=MULTI_LINE_FILTERS, validators=[
        Optional(), Length(max=2000), multi_line("the Spanish bio")])
    video_url = StringField("Video room link", filters=ONE_LINE_FILTERS, validators=[
        Optional(), Length(max=500, message="Keep the link to 500 characters or fewer."),
        one_line("the video room link")])
    accepting_new = BooleanField("Accepting new clients")

    def validate_video_url(self, field):
        """Clients open it from their email and the confirmation page: https, a host,
        and nothing a mail program could misread."""
        parts = urlsplit(field.data or "")
        if parts.scheme != "https" or not parts.hostname or any(
                c.isspace() or c in "<>\"'" for c in field.data):
            raise ValidationError("Enter the full link to the video room, starting with "
                                  "https://, like https://meet.example.com/maya.")

    def populate_obj(self, obj):
        super().populate_obj(obj)
        obj.video_url = self.video_url.data or None  # empty: no video, phone only


class HoursForm(PortalForm):
    weekday = SelectField("Day", coerce=int, choices=options(enumerate(WEEKDAYS)))
    start = TimeField("From (Pacific)", validators=[InputRequired("Enter a start time.")])
    end = TimeField("To (Pacific)", validators=[InputRequired("Enter an end time.")])

    def validate_end(self, field):
        if self.start.data and field.data and field.data <= self.start.data:
            raise ValidationError("The end time must be after the start time.")


class TimeOffForm(PortalForm):
    starts_at = DateTimeLocalField("Starts (Pacific)", validators=[
        InputRequired("Enter when the time off starts.")])
    ends_at = DateTimeLocalField("Ends (Pacific)", validators=[
        InputRequired("Enter when the time off ends.")])
    note = StringField("Note", filters=ONE_LINE_FILTERS,
                       validators=[Optional(), Length(max=200), one_line("the note")])

    def validate_ends_at(self, field):
        if self.starts_at.data and field.data and field.data <= self.starts_at.data:
            raise ValidationError("The end must be after the start.")


class UserForm(PortalForm):
    role = SelectField("Role", choices=options(ROLES.items()))
    therapist_id = SelectField("Linked therapist", coerce=int, validate_choice=True)
    active = BooleanField("Active (can sign in)")

    def validate_therapist_id(self, field):
        if self.role.data == "therapist" and not field.data:
            raise ValidationError("Choose the therapist this user is.")


class NewUserForm(UserForm):
    """An invite. The role has no default: the admin chooses what this person may see
    (an admin sees every client), and an admin who is also a linked therapist is
    confirmed in so many words."""

    email = EmailField("Email address", filters=ONE_LINE_FILTERS, validators=[
        InputRequired("Enter an email address."), one_line("the email address"),
        Email("Enter an email address like name@example.com."), Length(max=254)])
    role = SelectField("Role", choices=options([("", "Choose a role"), *ROLES.items()]),
                       validators=[InputRequired("Choose a role.")])
    confirm_admin = BooleanField("Yes, make this therapist an admin: they will see every "
                                 "client's request, the users page and the audit log")

    def validate_confirm_admin(self, field):
        if self.role.data == "admin" and self.therapist_id.data and not field.data:
            raise ValidationError("An admin sees every client's request, not only their "
                                  "own. Tick the box to confirm, or choose Therapist.")


class PauseForm(PortalForm):
    paused = BooleanField("Pause new consultation requests")
    message = TextAreaField("Message shown on the public pages while paused",
                            filters=MULTI_LINE_FILTERS, validators=[
                                Optional(), Length(max=1000), multi_line("the message")])


class AuditFilterForm(Form):
    action = StringField("Action", validators=[Optional(), Length(max=40)])
    actor = StringField("Who (email)", validators=[Optional(), Length(max=254)])
    request_id = StringField("Request number", validators=[Optional(), Length(max=12)])


class CalendarForm(PortalForm):
    """Connect a therapist's own calendar. The password is never shown back: the field
    is always empty when the page is drawn."""

    kind = RadioField("Kind of calendar", choices=options([
        ("ics", "Secret iCalendar address (Google, Outlook, iCloud: read-only)"),
        ("caldav", "CalDAV calendar (read, and consultations written into it)")]),
        default="ics", validators=[InputRequired("Choose the kind of calendar.")])
    url = StringField("Calendar address", filters=ONE_LINE_FILTERS, validators=[
        InputRequired("Enter the calendar's address."), Length(max=2000),
        one_line("the address")])
    username = StringField("CalDAV user name", filters=ONE_LINE_FILTERS,
                           validators=[Length(max=254), one_line("the user name")])
    password = PasswordField("CalDAV app password", validators=[Length(max=500)])

    def validate_username(self, field):
        if self.kind.data == "caldav" and not field.data:
            raise ValidationError("Enter the CalDAV user name.")

    def validate_password(self, field):
        if self.kind.data == "caldav" and not field.data:
            raise ValidationError("Enter the CalDAV app password (it is not shown again).")
