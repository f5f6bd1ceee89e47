"""The sign-in, second-step and password forms.

No composition rules and nothing that blocks pasting: password managers fill
these (the templates give each field its ``autocomplete`` purpose)."""

from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import Email, InputRequired, Length

from portal.staff.password_policy import MAX_LENGTH
from portal.web.forms import PortalForm


class LoginForm(PortalForm):
    email = EmailField("Email address", validators=[
        InputRequired("Enter your email address."), Length(max=254)])
    password = PasswordField("Password", validators=[
        InputRequired("Enter your password."), Length(max=MAX_LENGTH)])


class CodeForm(PortalForm):
    code = StringField("Code", validators=[
        InputRequired("Enter the code."), Length(max=40)])


class ForgotPasswordForm(PortalForm):
    email = EmailField("Email address", validators=[
        InputRequired("Enter your email address."),
        Email("Enter an email address like name@example.com."), Length(max=254)])


class SetPasswordForm(PortalForm):
    # Length is checked by the password rules, with a friendlier message.
    new_password = PasswordField("New password", validators=[
        InputRequired("Choose a password.")])


class ChangePasswordForm(SetPasswordForm):
    current_password = PasswordField("Current password", validators=[
        InputRequired("Enter your current password."), Length(max=MAX_LENGTH)])
