"""The website widget in Spanish, in headless Chromium, against the real assistant.

On a Spanish page (``<html lang="es">``, ``es-MX``, or ``data-language="es"`` on the script tag)
every text of the widget is Spanish and its root says ``lang="es"``; the assistant gets the
page's language with the conversation's first message (and again only when the page's language
changes), so a message whose words do not tell the language is answered in Spanish. An English
page keeps its English widget. A Spanish booking goes through the widget to the end.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from clinic.launcher import Stack
from clinic.rasa_api import hold_for_staff, send_staff_reply
from clinic.reading.language import detect_language
from tests.web.conftest import shot
from tests.web.test_widget import INPUT, LOG, OtherSite, api, ask, demo, last_bot, low_contrast, session_id

# Every text of the English widget: none may show on a Spanish page.
ENGLISH_TEXTS = ["Chat with us", "Close chat", "Virtual assistant", "With our clinic team", "Before you start",
                 "Start chat", "Type your question", "Your message", "Send", "You said", "Assistant:",
                 "Clinic team", "Suggested replies", "Conversation", "emergency", "stored by the clinic"]


def spanish_demo(stack: Stack) -> str:
    return f"{demo(stack)}?lang=es"


def open_spanish_chat(page: Page, stack: Stack) -> None:
    page.goto(spanish_demo(stack))
    page.get_by_role("button", name="Chatea con nosotros").click()
    page.get_by_role("button", name="Empezar el chat").click()
    expect(page.locator(INPUT)).to_be_focused()


def user_events(stack: Stack, conversation_id: str) -> list[dict[str, Any]]:
    """The patient's messages as Rasa stored them (text and metadata), through its HTTP API."""
    token = stack.env.get("RASA_API_TOKEN")
    response = httpx.get(f"{api(stack)}/conversations/{conversation_id}/tracker",
                         params={"token": token} if token else None, timeout=30)
    response.raise_for_status()
    return [event for event in response.json()["events"] if event["event"] == "user"]


def languages_sent(stack: Stack, conversation_id: str) -> list[str | None]:
    """The ``language`` each of the patient's messages carried in its metadata (None: none)."""
    return [(event.get("metadata") or {}).get("language") for event in user_events(stack, conversation_id)]


# The widget's own texts, shown or hidden (screen-reader prefixes, banners), without the messages'.
OWN_TEXTS_JS = """
() => {
  const copy = document.querySelector('.cc-root').cloneNode(true);
  copy.querySelectorAll('.cc-text').forEach((text) => text.remove());
  const labels = [...copy.querySelectorAll('[aria-label], [placeholder]')]
    .map((el) => `${el.getAttribute('aria-label') || ''} ${el.getAttribute('placeholder') || ''}`);
  return [copy.textContent, ...labels].join(' ');
}
"""


def widget_texts(page: Page) -> str:
    """What the widget itself shows and announces (not the messages): texts, labels, placeholder."""
    return page.evaluate(OWN_TEXTS_JS)


# ------------------------------------------------------------------ the page's language


def test_on_a_spanish_page_the_widget_speaks_spanish_and_the_assistant_answers_in_spanish(
        web_stack: Stack, page: Page) -> None:
    page.goto(spanish_demo(web_stack))
    expect(page.locator(".cc-root")).to_have_attribute("lang", "es")
    launcher = page.get_by_role("button", name="Chatea con nosotros")
    launcher.click()

    expect(page.get_by_role("heading", name="Antes de empezar")).to_be_visible()
    notice = page.locator(".cc-notice")
    expect(notice).to_contain_text("No es para emergencias")
    expect(notice).to_contain_text("988 (marca 2 para español)")
    expect(notice).to_contain_text("La clínica guarda tus mensajes")
    expect(page.get_by_role("button", name="Empezar el chat")).to_be_focused()
    shot(page, "es-privacy-notice")

    page.get_by_role("button", name="Empezar el chat").click()
    expect(page.get_by_label("Tu mensaje")).to_have_attribute("placeholder", "Escribe tu pregunta")
    expect(page.get_by_role("button", name="Enviar")).to_be_visible()
    expect(page.get_by_role("button", name="Cerrar el chat")).to_be_visible()
    expect(page.locator("#clinic-chat-status")).to_have_text("Asistente virtual")
    expect(page.get_by_role("log", name="Conversación")).to_be_visible()

    ask(page, "ketamina?")  # says nothing about its language: the page's decides
    expect(page.locator(f"{LOG} .cc-patient").last).to_have_text("Tú dijiste: ketamina?")
    expect(last_bot(page).locator(".cc-sr")).to_have_text("Asistente: ")
    answer = last_bot(page).locator(".cc-text").inner_text()
    assert detect_language(answer) == "es", answer
    ask(page, "Spravato?")
    assert detect_language(last_bot(page).locator(".cc-text").inner_text()) == "es"

    # The language went with the first message only: the conversation remembers it.
    assert languages_sent(web_stack, session_id(page)) == ["es", None]
    assert not [text for text in ENGLISH_TEXTS if text in widget_texts(page)]
    assert low_contrast(page) == []
    shot(page, "es-answer")


def test_the_hand_off_and_staff_replies_are_labelled_in_spanish(web_stack: Stack, page: Page) -> None:
    open_spanish_chat(page, web_stack)
    ask(page, "hola")
    assert hold_for_staff(session_id(page), base_url=api(web_stack)).ok
    assert send_staff_reply(session_id(page), "Hola, soy Dana, enfermera de la clínica.", staff_name="Dana Ruiz",
                            base_url=api(web_stack)).ok

    staff = page.locator(f"{LOG} .cc-staff")
    expect(staff).to_have_count(1)
    expect(staff.locator(".cc-label")).to_have_text("Equipo de la clínica")
    expect(staff.locator(".cc-sr")).to_have_text("Equipo de la clínica: ")
    banner = page.locator(".cc-handoff")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Estás en contacto con el equipo de la clínica")
    expect(banner).to_contain_text("llama al 911")
    expect(page.locator("#clinic-chat-status")).to_have_text("Con el equipo de la clínica")
    assert not [text for text in ENGLISH_TEXTS if text in widget_texts(page)]
    shot(page, "es-staff-reply")


@pytest.mark.parametrize(
    ("html_lang", "data_language", "launcher", "lang"),
    [
        ("es-MX", None, "Chatea con nosotros", "es"),  # a regional Spanish page
        ("en", "es", "Chatea con nosotros", "es"),  # the embed says Spanish on an English page
        ("es", "en", "Chat with us", "en"),  # ... or English on a Spanish one
        ("fr", None, "Chat with us", "en"),  # a language the assistant does not speak
        (None, None, "Chat with us", "en"),
    ],
)
def test_data_language_then_the_pages_lang_choose_the_widgets_language(
        web_stack: Stack, chromium: Browser, other_site_port: int, html_lang: str | None, data_language: str | None,
        launcher: str, lang: str) -> None:
    widget = f"http://127.0.0.1:{web_stack.web_port}/widget/clinic-chat.js"
    html = ("<!doctype html>" + (f'<html lang="{html_lang}">' if html_lang else "<html>")
            + f'<head><title>Site</title></head><body><script src="{widget}" data-server-url="{api(web_stack)}"'
            + (f' data-language="{data_language}"' if data_language else "") + "></script></body></html>")
    site = OtherSite(html, other_site_port)
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(site.url)
        page.get_by_role("button", name=launcher).click()
        expect(page.locator(".cc-root")).to_have_attribute("lang", lang)
        expect(page.locator(".cc-notice h3")).to_have_text("Antes de empezar" if lang == "es" else "Before you start")
        # without data-clinic-name the clinic is "our clinic", in the widget's language
        expect(page.locator(".cc-title")).to_have_text("nuestra clínica" if lang == "es" else "our clinic")
    finally:
        context.close()
        site.close()


def test_on_an_english_page_the_widget_stays_english_and_says_so_once(web_stack: Stack, page: Page) -> None:
    page.goto(demo(web_stack))
    expect(page.locator(".cc-root")).to_have_attribute("lang", "en")
    page.get_by_role("button", name="Chat with us").click()
    page.get_by_role("button", name="Start chat").click()
    ask(page, "ketamine?")
    assert detect_language(last_bot(page).locator(".cc-text").inner_text()) == "en"
    ask(page, "Spravato?")

    assert languages_sent(web_stack, session_id(page)) == ["en", None]
    texts = widget_texts(page)
    assert "Chat with us" in texts and "Type your question" in texts and "Tú dijiste" not in texts


def test_when_the_page_changes_language_the_widget_follows_and_tells_the_assistant_once(
        web_stack: Stack, page: Page) -> None:
    page.goto(demo(web_stack))
    page.get_by_role("button", name="Chat with us").click()
    page.get_by_role("button", name="Start chat").click()
    ask(page, "how much does an infusion cost?")
    conversation = session_id(page)

    # The patient follows the site's "En español" link: the same conversation, now in Spanish.
    page.get_by_role("link", name="En español").click()
    expect(page.locator(f"{LOG} .cc-patient")).to_have_count(1)  # reopened with its history
    expect(page.locator(f"{LOG} .cc-patient").first).to_have_text("Tú dijiste: how much does an infusion cost?")
    expect(page.get_by_role("button", name="Enviar")).to_be_visible()
    ask(page, "Spravato?")
    assert detect_language(last_bot(page).locator(".cc-text").inner_text()) == "es"
    ask(page, "ketamina?")

    # A single-page site switching its language in place: the widget re-labels everything.
    page.evaluate("() => { document.documentElement.lang = 'en'; }")
    expect(page.locator(".cc-root")).to_have_attribute("lang", "en")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.locator(f"{LOG} .cc-patient").first).to_have_text("You said: how much does an infusion cost?")
    expect(page.locator("#clinic-chat-status")).to_have_text("Virtual assistant")
    expect(page.get_by_label("Your message")).to_have_attribute("placeholder", "Type your question")
    ask(page, "Spravato?")
    assert detect_language(last_bot(page).locator(".cc-text").inner_text()) == "en"

    assert session_id(page) == conversation
    assert languages_sent(web_stack, conversation) == ["en", "es", None, "en"]


# ------------------------------------------------------------------ a Spanish booking

# What a patient answers to each question of the Spanish booking form (matched in the question's
# text); a question with suggested replies and no match here gets its first suggestion.
BOOKING_ANSWERS = [
    ("la agendo", "sí"),
    ("la envío", "sí"),
    ("es correcto", "sí"),
    ("nombre completo", "María González"),
    ("tu nombre", "María González"),
    ("celular", "312-555-0123"),
    ("recibir ayuda", "depresión"),
    ("motivo", "depresión"),
    ("recordatorios", "sí"),
    ("cuándo te gustaría venir", "el martes por la tarde"),
]
DONE = re.compile(r"¡Listo|está apartad|Solicitud enviada|Envié a nuestro equipo tu solicitud|tu solicitud para el",
                  re.I)
# English words a Spanish booking must not show, even as filled-in values ("Motivo: depression").
ENGLISH_VALUES = re.compile(r"\b(?:none|yes|first visit|returning patient|depression|other)\b", re.I)


def test_a_spanish_booking_through_the_widget_completes(web_stack: Stack, page: Page) -> None:
    open_spanish_chat(page, web_stack)
    ask(page, "quiero agendar una consulta")
    asked: list[str] = []
    offered: list[str] = []
    for _ in range(14):
        question = last_bot(page).locator(".cc-text").inner_text()
        asked.append(question)
        if DONE.search(question):
            break
        answer = next((value for key, value in BOOKING_ANSWERS if key in question.lower()), None)
        suggestions = page.get_by_role("group", name="Respuestas sugeridas").get_by_role("button")
        offered += suggestions.all_inner_texts()
        if answer is None and suggestions.count():
            suggestions.first.click()
            expect(page.locator("#clinic-chat-panel")).to_have_attribute("data-turn", "done")
        else:
            assert answer, f"unexpected question in the Spanish booking form: {question}"
            ask(page, answer)
    conversation = page.locator(LOG).inner_text()
    shot(page, "es-booking-done")
    assert DONE.search(last_bot(page).inner_text()), conversation
    assert "María" in last_bot(page).inner_text()
    english = [q for q in asked if detect_language(q) == "en" or ENGLISH_VALUES.search(q)]
    assert not english, f"English in the Spanish booking: {english}"
    english_buttons = [title for title in offered if detect_language(title) == "en"]
    assert not english_buttons, f"English buttons in the Spanish booking: {english_buttons}"
