"""Public pages: the landing page and the consultation request flow."""

from flask import render_template
from sqlalchemy import select

from portal.extensions import db
from portal.models import Therapist
from portal.public import bp


@bp.get("/")
def index():
    therapists = db.session.scalars(
        select(Therapist).where(Therapist.active.is_(True)).order_by(Therapist.name)
    ).all()
    return render_template("public/index.html", therapists=therapists)
