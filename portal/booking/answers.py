"""The words for a request's answers: the keys stored, the labels shown (translated
where the client reads them)."""

from __future__ import annotations

from portal.i18n import N_

INTERESTS = {
    "kap": N_("Ketamine-assisted psychotherapy"),
    "depression": N_("Depression"),
    "trauma": N_("Trauma / PTSD"),
    "anxiety": N_("Anxiety"),
    "other": N_("Something else"),
}
MEETINGS = {"phone": N_("Phone call"), "video": N_("Video call")}
CONTACT_METHODS = {"email": N_("Email"), "phone": N_("Phone call"), "text": N_("Text message")}
# How the person expects to pay for therapy after the free consultation. Self-pay
# means a Good Faith Estimate is due before the first paid session (No Surprises
# Act, 45 CFR 149.610).
PAYMENT_METHODS = {"self_pay": N_("Self-pay"), "insurance": N_("Insurance"),
                   "not_sure": N_("Not sure yet")}
SELF_PAY = "self_pay"
# The languages a request can be made in, named for staff (the back office is English).
LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}
