""""Exit this page" on the server side: the link on every public page (and none in
the back office), and forgetting the visitor's answers when it is used. Its
behaviour in a browser is tests/test_browser_exit_page.py."""

from __future__ import annotations

import re

import pytest

from tests.test_public_flow import pass_eligibility

NEUTRAL = "https://weather.example.com/today"


@pytest.fixture
def app_config():
    return {"EXIT_URL": NEUTRAL}


def exit_links(html: str) -> list[str]:
    return re.findall(r"<a [^>]*data-exit-page-button[^>]*>", html)


@pytest.mark.parametrize("path", ["/", "/consultation", "/consultation/not-eligible",
                                  "/privacy", "/no-such-page"])
def test_every_public_page_links_to_the_configured_neutral_site(client, path):
    [link] = exit_links(client.get(path).text)
    assert f'href="{NEUTRAL}"' in link
    assert 'rel="nofollow noreferrer"' in link
    assert "/static/js/exit_page.js" in client.get(path).text


def test_the_back_office_has_none(client):
    page = client.get("/admin/login").text
    assert exit_links(page) == [] and "exit_page.js" not in page


def test_exiting_forgets_the_answers_in_the_session(client):
    pass_eligibility(client)
    assert client.get("/consultation/time").status_code == 200
    response = client.post("/exit-this-page")
    assert response.status_code == 204
    with client.session_transaction() as session:
        assert dict(session) == {}
    assert client.get("/consultation/time").status_code == 302
    assert 'value="94110"' not in client.get("/consultation").text
