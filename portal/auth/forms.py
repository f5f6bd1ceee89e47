"""The sign-in form."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import InputRequired, Length


class LoginForm(FlaskForm):
    email = EmailField("Email address", validators=[
        InputRequired("Enter your email address."), Length(max=254)])
    password = PasswordField("Password", validators=[
        InputRequired("Enter your password."), Length(max=1024)])
