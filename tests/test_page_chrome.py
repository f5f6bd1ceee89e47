"""The chrome every public page repeats (portal.web.fragments.page_chrome): the "Exit this
page" button, the crisis banner and the footer are rendered once per language, note
and mount point and reused; a reused copy must still be the one this page needs."""

from __future__ import annotations

import re

from portal.lru_cache import LruCache

FORM_NOTE = "This form is not for emergencies."
SITE_NOTE = "We can't help with emergencies through this website."


def crisis_banner(html: str) -> str:
    banner = re.search(r'<aside class="crisis".*?</aside>', html, re.S)
    assert banner is not None, "no crisis banner"
    return re.sub(r"\s+", " ", banner.group(0)).replace("&#39;", "'")


def footer(html: str) -> str:
    return re.search(r'<footer class="site-footer">.*?</footer>', html, re.S).group(0)


def test_each_page_gets_its_own_note_and_language_from_the_kept_copies(app, client):
    for _ in range(2):  # the second round is served from the kept copies
        form_page = client.get("/consultation").text
        info_page = client.get("/privacy").text
        assert FORM_NOTE in crisis_banner(form_page) and SITE_NOTE not in crisis_banner(form_page)
        assert SITE_NOTE in crisis_banner(info_page) and FORM_NOTE not in crisis_banner(info_page)
        for html in (form_page, info_page):
            banner = crisis_banner(html)
            assert 'href="tel:988"' in banner and 'href="sms:988"' in banner
            assert "offers consultations to people in California only" in footer(html)
        spanish = client.get("/privacy", headers={"Accept-Language": "es"}).text
        assert "No podemos atender emergencias por este sitio web." in crisis_banner(spanish)
        assert "ofrece consultas solo a personas en California" in footer(spanish)
        assert "Salir de esta página" in spanish and "Exit this page" not in spanish
        assert "Exit this page" in info_page
    with app.app_context():
        kept = app.extensions["page_chrome"]
    assert isinstance(kept, LruCache)
    # exit button, banner (two notes in English, one in Spanish) and footer per language
    assert len(kept) == 2 + 3 + 2


def test_the_links_follow_where_the_portal_is_mounted(client):
    at_root = client.get("/privacy").text
    assert 'data-exit-page-forget="/exit-this-page"' in at_root
    mounted = client.get("/privacy", base_url="http://localhost/portal/").text
    assert 'data-exit-page-forget="/portal/exit-this-page"' in mounted
    assert 'href="/portal/privacy"' in footer(mounted)
    assert 'href="/privacy"' in footer(client.get("/privacy").text)


def test_the_back_office_has_none_of_the_public_chrome(admin):
    response = admin.get("/admin/")
    assert response.status_code == 200
    html = response.text
    assert '<aside class="crisis"' not in html
    assert "data-exit-page" not in html
