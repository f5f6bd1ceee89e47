"""Keeping the stored name search columns in step with ``normalise_name``.

Names were once stored casefolded with their accents; the search now strips them.
Rows written before that are found again once ``refresh_search_names`` has run
(``flask --app portal refresh-search-names``); until then a search typed with the
accents still finds them (portal.admin.listing looks for both forms)."""

from __future__ import annotations

from sqlalchemy import select, update

from portal.extensions import db
from portal.models import ConsultationRequest, normalise_name

R = ConsultationRequest
BATCH = 2000


def refresh_search_names() -> int:
    """Rewrite the first and last name search columns that differ from what
    ``normalise_name`` makes now, in batches by id; returns how many rows changed."""
    changed, after = 0, 0
    first_len, last_len = (R.first_name_normalised.type.length,
                           R.last_name_normalised.type.length)
    while True:
        rows = db.session.execute(
            select(R.id, R.first_name, R.last_name, R.first_name_normalised,
                   R.last_name_normalised).where(R.id > after).order_by(R.id).limit(BATCH)
        ).all()
        if not rows:
            return changed
        for row_id, first, last, first_key, last_key in rows:
            new_first, new_last = normalise_name(first)[:first_len], normalise_name(last)[:last_len]
            if (new_first, new_last) != (first_key, last_key):
                db.session.execute(update(R).where(R.id == row_id).values(
                    first_name_normalised=new_first, last_name_normalised=new_last))
                changed += 1
        after = rows[-1][0]
