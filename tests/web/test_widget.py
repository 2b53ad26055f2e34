"""The website chat widget in headless Chromium, against the real assistant.

A patient opens the widget on the demo clinic page, reads the privacy notice, asks a FAQ,
clicks a quick reply, completes the booking form, reloads and still sees the conversation,
and receives a staff reply labelled as from the clinic team while the widget shows that staff
hold the conversation. Keyboard-only use, a 360-px phone screen, AA contrast (also with a light
custom colour on another site) and "nothing loaded from elsewhere" are checked too.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from clinic.launcher import Stack
from clinic.rasa_api import hand_back, send_staff_reply
from tests.web.conftest import shot

LOG = "#clinic-chat-log"
INPUT = "#clinic-chat-input"


def demo(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.web_port}/"


def api(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.rasa_port}"


def open_chat(page: Page, stack: Stack) -> None:
    page.goto(demo(stack))
    page.get_by_role("button", name="Chat with us").click()
    page.get_by_role("button", name="Start chat").click()
    expect(page.locator(INPUT)).to_be_focused()


def turn_done(page: Page) -> None:
    """Waits until the assistant has finished its answer (the server's state event came)."""
    expect(page.locator("#clinic-chat-panel")).to_have_attribute("data-turn", "done")


def say(page: Page, text: str) -> None:
    page.fill(INPUT, text)
    page.keyboard.press("Enter")
    expect(page.locator(f"{LOG} .cc-patient").last).to_contain_text(text)
    turn_done(page)


def ask(page: Page, text: str) -> None:
    """Sends ``text`` and waits for the whole answer."""
    before = page.locator(f"{LOG} .cc-bot").count()
    say(page, text)
    assert page.locator(f"{LOG} .cc-bot").count() > before, f"no answer to {text!r}: {page.locator(LOG).inner_text()}"


def last_bot(page: Page):
    return page.locator(f"{LOG} .cc-bot").last


def session_id(page: Page) -> str:
    state = page.evaluate(
        "() => Object.keys(localStorage).filter(k => k.startsWith('clinic-chat:')).map(k => localStorage.getItem(k))"
    )
    return json.loads(state[0])["sessionId"]


# ------------------------------------------------------------------ the conversation


def test_privacy_notice_first_then_a_faq_is_answered(web_stack: Stack, page: Page) -> None:
    page.goto(demo(web_stack))
    launcher = page.get_by_role("button", name="Chat with us")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    launcher.click()
    expect(launcher).to_have_attribute("aria-expanded", "true")

    # The notice comes before anything can be typed.
    expect(page.get_by_role("heading", name="Before you start")).to_be_visible()
    expect(page.locator(".cc-notice")).to_contain_text("988")
    expect(page.locator(".cc-notice")).to_contain_text("stored by the clinic")
    expect(page.locator(INPUT)).to_be_hidden()
    expect(page.get_by_role("button", name="Start chat")).to_be_focused()
    shot(page, "privacy-notice")

    page.get_by_role("button", name="Start chat").click()
    ask(page, "how much does an infusion cost?")

    expect(last_bot(page)).to_contain_text("$450")
    expect(page.locator(".cc-typing")).to_be_hidden()
    log = page.locator(LOG)
    expect(log).to_have_attribute("role", "log")
    expect(log).to_have_attribute("aria-live", "polite")
    assert len(session_id(page)) >= 43  # 256 random bits, the only key to the conversation
    shot(page, "faq-answer")


# What a patient answers to each question of the booking form (matched in the question's text);
# a question with suggested replies and no match here gets its first suggestion.
BOOKING_ANSWERS = [
    ("shall i", "yes"),
    ("is that right", "yes"),
    ("full name", "Jordan Lee"),
    ("your name", "Jordan Lee"),
    ("mobile", "312-555-0123"),
    ("help with", "depression"),
    ("reason", "depression"),
    ("reminder", "yes"),
    ("when would you like", "next Tuesday at 10am"),
]
DONE = re.compile(r"\bthanks\b|\bbooked\b|sent your request", re.I)


def test_a_quick_reply_starts_the_booking_form_which_is_completed(web_stack: Stack, page: Page) -> None:
    open_chat(page, web_stack)
    ask(page, "are you a bot?")
    replies = page.get_by_role("group", name="Suggested replies")
    expect(replies.get_by_role("button")).to_have_count(2)
    shot(page, "quick-replies")

    replies.get_by_role("button", name="Book a consultation").click()

    expect(page.locator(f"{LOG} .cc-patient").last).to_have_text("You said: Book a consultation")
    turn_done(page)
    expect(page.locator(LOG)).not_to_contain_text("/book_consultation")  # payloads are never shown
    for _ in range(12):
        question = last_bot(page).inner_text()
        if DONE.search(question):
            break
        answer = next((value for key, value in BOOKING_ANSWERS if key in question.lower()), None)
        suggestions = page.get_by_role("group", name="Suggested replies").get_by_role("button")
        if answer is None and suggestions.count():
            suggestions.first.click()
            turn_done(page)
        else:
            assert answer, f"unexpected question in the booking form: {question}"
            ask(page, answer)
    conversation = page.locator(LOG).inner_text()
    assert DONE.search(last_bot(page).inner_text()), conversation
    assert "didn't quite get that" not in conversation and "Jordan" in conversation
    shot(page, "booking-done")


def test_a_reload_keeps_the_conversation(web_stack: Stack, page: Page) -> None:
    open_chat(page, web_stack)
    ask(page, "are you a bot?")
    page.get_by_role("group", name="Suggested replies").get_by_role("button", name="Talk to a person").click()
    expect(last_bot(page)).to_contain_text("team")
    turn_done(page)
    before = session_id(page)

    page.reload()

    expect(page.locator(f"{LOG} .cc-patient")).to_have_count(2)  # reopened by itself, with the history
    expect(page.locator(f"{LOG} .cc-patient").first).to_have_text("You said: are you a bot?")
    expect(page.locator(f"{LOG} .cc-patient").nth(1)).to_have_text("You said: Talk to a person")
    expect(page.locator(LOG)).to_contain_text("automated assistant")
    assert session_id(page) == before
    shot(page, "after-reload")

    say(page, "ok thanks")  # the conversation goes on in the same session (held for staff: no answer)
    expect(page.locator(f"{LOG} .cc-patient")).to_have_count(3)
    expect(page.locator(f"{LOG} .cc-note")).to_have_count(0)  # sent, not waiting
    assert session_id(page) == before


def test_staff_replies_arrive_live_labelled_and_the_hand_off_is_visible(web_stack: Stack, page: Page) -> None:
    open_chat(page, web_stack)
    banner = page.locator(".cc-handoff")
    status = page.locator("#clinic-chat-status")
    expect(status).to_have_text("Virtual assistant")
    ask(page, "i take lithium, is ketamine safe for me?")
    expect(last_bot(page)).to_contain_text("clinical team")
    expect(banner).to_be_visible()
    expect(status).to_have_text("With our clinic team")

    delivery = send_staff_reply(session_id(page), "Hi, this is Dana, a nurse here. I'll call you shortly.",
                                staff_name="Dana Ruiz", base_url=api(web_stack))
    assert delivery.ok, delivery.error

    staff = page.locator(f"{LOG} .cc-staff")
    expect(staff).to_have_count(1)
    expect(staff).to_contain_text("Clinic team")
    expect(staff).to_contain_text("Hi, this is Dana, a nurse here.")
    expect(staff).not_to_contain_text("Ruiz")
    shot(page, "staff-reply")

    page.reload()
    expect(page.locator(f"{LOG} .cc-staff")).to_contain_text("Clinic team")  # labelled in the history too
    expect(banner).to_be_visible()

    assert hand_back(session_id(page), base_url=api(web_stack)).ok
    expect(last_bot(page)).to_contain_text("virtual assistant")
    expect(banner).to_be_hidden()
    expect(status).to_have_text("Virtual assistant")
    shot(page, "handed-back")


# ------------------------------------------------------------------ accessibility


def focused(page: Page) -> str:
    return page.evaluate("() => { const e = document.activeElement; return (e.id || e.className || e.tagName) + "
                         "'|' + (e.getAttribute('aria-label') || e.textContent || '').trim().slice(0, 40); }")


def test_keyboard_only(web_stack: Stack, page: Page) -> None:
    page.goto(demo(web_stack))
    for _ in range(10):  # skip link, the page's link, then the launcher
        page.keyboard.press("Tab")
        if "cc-launcher" in focused(page):
            break
    assert "Chat with us" in focused(page)

    page.keyboard.press("Enter")
    assert "Start chat" in focused(page)
    page.keyboard.press("Enter")
    assert focused(page).startswith("clinic-chat-input")

    page.keyboard.type("are you a bot?")
    page.keyboard.press("Enter")
    expect(page.get_by_role("group", name="Suggested replies")).to_be_visible()
    assert focused(page).startswith("clinic-chat-input")  # focus stays where the patient types

    page.keyboard.press("Shift+Tab")  # the suggested replies come right before the message box
    assert "Book a consultation" in focused(page)
    shot(page, "keyboard-focus")
    page.keyboard.press("Shift+Tab")
    assert "Talk to a person" in focused(page)
    page.keyboard.press("Enter")
    expect(page.locator(f"{LOG} .cc-patient").last).to_have_text("You said: Talk to a person")
    assert focused(page).startswith("clinic-chat-input")
    expect(last_bot(page)).to_contain_text("team")

    page.keyboard.press("Escape")
    expect(page.locator("#clinic-chat-panel")).to_be_hidden()
    assert "Chat with us" in focused(page)


CONTRAST_JS = """
() => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const out = [];
  for (const el of document.querySelectorAll('.cc-root *')) {
    if (!el.offsetParent && getComputedStyle(el).position !== 'fixed') continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    out.push({ el: el.className || el.tagName, text: el.textContent.trim().slice(0, 30),
               ratio: ratio(parse(getComputedStyle(el).color).slice(0, 3), background(el)) });
  }
  const input = document.querySelector('#clinic-chat-input');
  if (input && input.offsetParent) {
    out.push({ el: 'placeholder', text: input.placeholder,
               ratio: ratio(parse(getComputedStyle(input, '::placeholder').color).slice(0, 3), [255, 255, 255]) });
  }
  return out;
}
"""

NAMES_JS = """
() => [...document.querySelectorAll('.cc-root button, .cc-root textarea, .cc-root input')]
  .filter((el) => el.offsetParent || getComputedStyle(el).position === 'fixed')
  .map((el) => ({ el: el.className, name: (el.getAttribute('aria-label')
      || (el.id && document.querySelector(`label[for="${el.id}"]`)?.textContent) || el.textContent).trim() }))
"""


def low_contrast(page: Page) -> list[dict]:
    return [item for item in page.evaluate(CONTRAST_JS) if item["ratio"] < 4.5]


def test_controls_are_labelled_and_text_meets_aa_contrast(web_stack: Stack, page: Page) -> None:
    open_chat(page, web_stack)
    ask(page, "are you a bot?")
    ask(page, "i take lithium, is ketamine safe for me?")  # the hand-off banner
    expect(page.locator(".cc-handoff")).to_be_visible()
    assert send_staff_reply(session_id(page), "Hi, this is Dana.", staff_name="Dana", base_url=api(web_stack)).ok
    expect(page.locator(f"{LOG} .cc-staff")).to_have_count(1)

    names = page.evaluate(NAMES_JS)
    assert names and all(item["name"] for item in names), names
    assert low_contrast(page) == []
    expect(page.get_by_role("region", name="Sample Ketamine Clinic")).to_be_visible()
    expect(page.get_by_role("button", name="Close chat")).to_be_visible()
    expect(page.get_by_label("Your message")).to_be_visible()


def test_on_a_360_px_phone_the_chat_fits_the_screen(web_stack: Stack, chromium) -> None:
    context = chromium.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True,
                                   has_touch=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        open_chat(page, web_stack)
        ask(page, "what is ketamine?")
        ask(page, "are you a bot?")
        panel = page.locator("#clinic-chat-panel").bounding_box()
        assert panel is not None and panel["x"] >= 0 and panel["x"] + panel["width"] <= 360
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
        for selector in (INPUT, ".cc-send", ".cc-close", ".cc-quick-reply >> nth=0"):
            box = page.locator(selector).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360, selector
            assert box["height"] >= 44, selector  # touch targets
        assert low_contrast(page) == []
        shot(page, "phone-360")
    finally:
        context.close()


class OtherSite:
    """A real local web server (loopback, like the widget's, so Chromium allows the requests)."""

    def __init__(self, html: str, port: int) -> None:
        body = html.encode("utf-8")

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_embedded_on_another_site_with_a_light_colour(web_stack: Stack, chromium, other_site_port: int) -> None:
    context = chromium.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    widget = f"http://127.0.0.1:{web_stack.web_port}/widget/clinic-chat.js"
    html = (f'<!doctype html><html lang="en"><head><title>Other site</title></head><body><h1>Another site</h1>'
            f'<script src="{widget}" data-server-url="{api(web_stack)}" data-clinic-name="Yellow Clinic" '
            f'data-color="#ffd400"></script></body></html>')
    site = OtherSite(html, other_site_port)  # another origin (in WEB_ALLOWED_ORIGINS): the clinic's own website
    try:
        page.goto(site.url)
        page.get_by_role("button", name="Chat with us").click()
        page.get_by_role("button", name="Start chat").click()
        ask(page, "how much does an infusion cost?")
        expect(last_bot(page)).to_contain_text("$450")
        expect(page.get_by_role("heading", name="Yellow Clinic")).to_be_visible()
        assert page.evaluate("() => getComputedStyle(document.querySelector('.cc-launcher')).color") == "rgb(0, 0, 0)"
        assert low_contrast(page) == []
        shot(page, "other-site-light-colour")
    finally:
        context.close()
        site.close()


def test_nothing_is_loaded_from_a_third_party(web_stack: Stack, page: Page) -> None:
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    open_chat(page, web_stack)
    ask(page, "what is ketamine?")
    page.reload()
    expect(page.locator(f"{LOG} .cc-patient")).to_have_count(1)

    assert hosts == {f"127.0.0.1:{web_stack.web_port}", f"127.0.0.1:{web_stack.rasa_port}"}


@pytest.mark.parametrize("markup", ['<img src=x onerror="window.__xss=1">', "<script>window.__xss=2</script>"])
def test_message_text_is_never_run_as_html(web_stack: Stack, page: Page, markup: str) -> None:
    open_chat(page, web_stack)
    ask(page, "i take lithium, is ketamine safe for me?")
    assert send_staff_reply(session_id(page), f"Staff says {markup}", staff_name="Dana", base_url=api(web_stack)).ok

    expect(page.locator(f"{LOG} .cc-staff")).to_contain_text(markup)
    page.fill(INPUT, markup)
    page.keyboard.press("Enter")
    expect(page.locator(f"{LOG} .cc-patient").last).to_contain_text(markup)
    assert page.evaluate("() => window.__xss") is None
