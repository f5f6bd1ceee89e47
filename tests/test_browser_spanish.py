"""The whole flow in Spanish in a real Chromium: chosen with the "Español" link, kept
from page to page with lang="es", axe-core clean and screenshots at 1280 and 375 px;
and a browser that asks for Spanish gets it without choosing."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import check_page as axe_and_screenshots
from tests.test_browser_public import emailed_code, manage_url_for

pytestmark = pytest.mark.browser


def check_page(page: Page, screenshot_dir, name: str) -> None:
    expect(page.locator("html")).to_have_attribute("lang", "es")
    axe_and_screenshots(page, name, lambda width: screenshot_dir / f"es-{name}-{width}.png")


def test_the_whole_flow_in_spanish(page: Page, base_url, live_app, screenshot_dir):
    page.goto(base_url + "/")
    page.get_by_role("link", name="Español").click()
    expect(page.get_by_role("heading", name="Nuestros terapeutas")).to_be_visible()
    check_page(page, screenshot_dir, "landing")

    page.get_by_role("link", name="Pedir una consulta gratuita").click()
    page.get_by_role("button", name="Continuar").click()
    expect(page.get_by_role("alert")).to_contain_text("Hay un problema")
    check_page(page, screenshot_dir, "eligibility-errors")
    page.get_by_role("group", name="¿Vive en California?").get_by_label("Sí").check()
    page.get_by_label("El código postal de su casa").fill("94110")
    page.get_by_role("group", name="¿Estará en California durante la consulta?") \
        .get_by_label("Sí").check()
    page.get_by_role("group", name="¿Tiene 18 años o más?").get_by_label("Sí").check()
    page.get_by_role("button", name="Continuar").click()

    expect(page).to_have_url(re.compile(r"/consultation/time"))
    page.get_by_role("button", name="Continuar").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("Hay un problema")
    expect(page).to_have_title(re.compile(r"^Error: "))
    check_page(page, screenshot_dir, "time-errors")
    page.locator("details.slot-day[open] input[name=slot]").first.check()
    page.get_by_role("button", name="Continuar").click()

    expect(page).to_have_url(re.compile(r"/consultation/about"))
    page.get_by_role("button", name="Continuar").click()
    expect(page.get_by_label("Nombre", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text("Escriba su nombre").first).to_be_visible()
    check_page(page, screenshot_dir, "about-errors")
    email = f"es-{secrets.token_hex(4)}@example.com"
    page.get_by_label("Nombre", exact=True).fill("Rosa")
    page.get_by_label("Apellido").fill("Martínez")
    page.get_by_label("Dirección de correo electrónico").fill(email)
    page.get_by_label("Número de teléfono").fill(f"(559) 555-{secrets.randbelow(10000):04d}")
    # No video room here: phone is said, not asked.
    expect(page.get_by_text("Por teléfono: su terapeuta le llamará")).to_be_visible()
    page.get_by_role("button", name="Continuar").click()

    expect(page.get_by_role("heading", name="Revise sus respuestas")).to_be_visible()
    check_page(page, screenshot_dir, "check")
    page.get_by_label("Acepto que la consulta guarde estos datos").check()
    page.get_by_label("Entiendo que este formulario no es para emergencias").check()
    page.get_by_role("button", name="Enviar mi solicitud").click()

    expect(page.get_by_role("heading", name="Revise su correo electrónico")).to_be_visible()
    check_page(page, screenshot_dir, "verify")
    page.get_by_label("Código de confirmación").fill(emailed_code(live_app, email))
    page.get_by_role("button", name="Enviar mi solicitud").click()

    expect(page.get_by_role("heading", name="Su consulta está reservada")).to_be_visible()
    expect(page.locator("#next-step")).to_have_text(re.compile(
        r" el (lunes|martes|miércoles|jueves|viernes|sábado|domingo), \d+ de \w+, "
        r"\d+:\d\d.*[ap]\.m\. PT\.$"))
    expect(page.get_by_text(re.compile(r" le llamará al \(559\) 555-\d{4} el "))).to_be_visible()
    check_page(page, screenshot_dir, "confirmation")

    page.goto(base_url + manage_url_for(live_app, page.url))
    expect(page.get_by_role("heading", name="Su consulta")).to_be_visible()
    check_page(page, screenshot_dir, "manage")
    page.get_by_role("link", name="Cancelar mi consulta").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "¿Seguro que quiere cancelar su consulta?")
    check_page(page, screenshot_dir, "manage-cancel")

    # "English" switches back on the same page.
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Are you sure you want to cancel your consultation?")
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_a_browser_that_asks_for_spanish_gets_it(browser: Browser, base_url, screenshot_dir):
    context = browser.new_context(locale="es-MX")
    try:
        page = context.new_page()
        page.goto(base_url + "/consultation")
        expect(page.get_by_role("heading", name="Vea si puede reservar una consulta")) \
            .to_be_visible()
        check_page(page, screenshot_dir, "eligibility")
        page.goto(base_url + "/consultation/not-eligible")
        check_page(page, screenshot_dir, "not-eligible")
        page.goto(base_url + "/good-faith-estimate")
        expect(page.get_by_role("heading", name="Estimación de Buena Fe", exact=True)) \
            .to_be_visible()
        check_page(page, screenshot_dir, "good-faith-estimate")
    finally:
        context.close()
