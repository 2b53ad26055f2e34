"""clinic.safety.guard: the deterministic crisis / emergency / personal-medical detector.

The labelled phrases in ``guard_phrases.yml`` were written independently of the lexicons (see
docs/POLICY.md for the labels). The guard is built once per session (``guard`` fixture).
"""

from __future__ import annotations

import multiprocessing
import random
import resource
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
import yaml

from clinic.safety.guard import GuardResult

PHRASES_FILE = Path(__file__).with_name("guard_phrases.yml")
PHRASES: list[dict[str, Any]] = yaml.safe_load(PHRASES_FILE.read_text(encoding="utf-8"))
LABELS = {"crisis", "emergency", "medical", "human", "none"}
FAST_MS = 200  # budget for one message, however long or strange
TIMED_RUNS = 3
HARD_LIMIT_S = 3.0  # a hostile input still running after this is stopped and fails its test


def _phrase_id(index: int, phrase: dict[str, Any]) -> str:
    return f"{index:03d}-{phrase['label']}-{phrase['text'][:40]}"


def _expected(label: str) -> str | None:
    return None if label == "none" else label


def test_the_phrase_file_is_big_enough_and_well_formed() -> None:
    assert len(PHRASES) >= 300
    assert all(set(p) <= {"text", "label", "note"} and p["text"].strip() for p in PHRASES)
    assert {p["label"] for p in PHRASES} == LABELS
    texts = [p["text"].strip().lower() for p in PHRASES]
    assert len(texts) == len(set(texts)), "a phrase is listed twice"


@pytest.mark.parametrize("phrase", PHRASES, ids=[_phrase_id(i, p) for i, p in enumerate(PHRASES)])
def test_labelled_phrase(guard, phrase: dict[str, Any]) -> None:
    result = guard.check(phrase["text"])

    assert result.category == _expected(phrase["label"]), (
        f"{phrase.get('note', '')}: rule={result.rule} matched={result.matched}"
    )


def test_every_result_names_its_rule_and_the_words_it_read(guard) -> None:
    problems = []
    for phrase in PHRASES:
        result = guard.check(phrase["text"])
        read = guard.read(phrase["text"]).text
        if result.fired:
            if not (isinstance(result.rule, str) and result.rule and result.matched):
                problems.append(f"no rule or words: {phrase['text']!r} -> {result}")
            elif not all(word in read for word in result.matched):
                problems.append(f"words not in the message: {phrase['text']!r} -> {result.matched}")
        elif result.rule is not None or result.matched:
            problems.append(f"rule without a category: {phrase['text']!r} -> {result}")
    assert sum(guard.check(p["text"]).fired for p in PHRASES) >= 150
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("text", "category", "rule", "word"),
    [
        ("I want to kill myself", "crisis", "self_harm", "kill myself"),
        ("my son says he wants to kill himself", "crisis", "self_harm", "kill himself"),
        ("I'm going to hurt my neighbor", "crisis", "harm_to_others", "hurt"),
        ("I took all my pills on purpose", "crisis", "intentional_overdose", "pills"),
        ("swallowed extra seroquel on purpose last night", "crisis", "intentional_overdose", "on purpose"),
        ("my dad is having a seizure", "emergency", "acute_emergency", "seizure"),
        ("I'm on lexapro, can I do this?", "medical", "named_medicine", "lexapro"),
        ("how many mg should I get", "medical", "personal_dose", "mg"),
        ("my BP was 160/100 this morning", "medical", "test_result", "160/100"),
    ],
)
def test_the_rule_and_matched_words(guard, text: str, category: str, rule: str, word: str) -> None:
    result = guard.check(text)

    assert (result.category, result.rule) == (category, rule)
    assert any(word in m for m in result.matched), result.matched
    assert result.as_dict()["rule"] == rule and result.as_dict()["matched"] == result.matched


def test_nothing_fired_means_no_rule_and_no_words(guard) -> None:
    result = guard.check("what are your hours on saturday?")

    assert result == GuardResult(language="en")
    assert not result.fired


@pytest.mark.parametrize(
    "text",
    [
        "This price is killing me",
        "I'm dying to know how the treatment actually works",
        "I need to kill time before my appt",
        "my commute is murder",
        "my phone is about to die, text me the address",
        "I'd kill for a coffee right now",
        "these shoes are killing me, anyway where do I park",
    ],
)
def test_idioms_do_not_fire(guard, text: str) -> None:
    assert guard.check(text).category is None


@pytest.mark.parametrize(
    "text",
    ["maybe the next shift will finally kill me, i hope so", "i hope this workout kills me"],
)
def test_a_wish_to_be_killed_is_not_read_as_an_idiom(guard, text: str) -> None:
    assert not guard.check(text).idioms


@pytest.mark.parametrize(
    "text", ["I'm not suicidal, I just want to know the price", "no I am not going to hurt myself"]
)
def test_an_explicit_denial_does_not_fire_and_is_recorded(guard, text: str) -> None:
    result = guard.check(text)

    assert result.category is None
    assert result.negated


@pytest.mark.parametrize(
    ("typed", "corrected", "category"),
    [
        ("i want to kil myself", "kill myself", "crisis"),
        ("been having sucidal thoughts", "suicidal", "crisis"),
        ("my son is having a siezure", "seizure", "emergency"),
        ("my mom is unconcious", "unconscious", "emergency"),
    ],
)
def test_typos_are_corrected(guard, typed: str, corrected: str, category: str) -> None:
    assert corrected in guard.read(typed).text
    assert guard.check(typed).category == category


def test_words_that_are_already_right_are_not_corrected(guard) -> None:
    assert guard.read("I would like to schedule a consultation").text == "i would like to schedule a consultation"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Quiero matarme", "crisis"),
        ("Mi hijo dice que se quiere matar", "crisis"),
        ("No puedo respirar", "emergency"),
        ("Me duele mucho el pecho ahora mismo", "emergency"),
    ],
)
def test_spanish_sets_the_language(guard, text: str, category: str) -> None:
    result = guard.check(text)

    assert (result.category, result.language) == (category, "es")


@pytest.mark.parametrize("text", ["I want to kill myself", "my dad is having a seizure", "what are your hours"])
def test_english_keeps_the_language(guard, text: str) -> None:
    assert guard.check(text).language == "en"


@pytest.mark.parametrize("text", ["", "   ", "\n\t", None])
def test_empty_input(guard, text: str | None) -> None:
    assert guard.check(text) == GuardResult()


def test_a_crisis_deep_in_a_long_message_is_found(guard) -> None:
    text = "I have a question about parking and insurance. " * 100 + "Honestly I want to kill myself."

    assert guard.check(text).category == "crisis"


# ------------------------------------------------------------------ hostile input
# Run in a forked child (it inherits the built guard): a runaway input is stopped after
# HARD_LIMIT_S and limited in memory, so it fails its own test instead of the whole session.


def _hostile_inputs() -> dict[str, str]:
    rng = random.Random(20_000)
    junk = bytes(rng.randrange(256) for _ in range(20_000))
    return {
        "prose-20000": ("Hello, I have a question about the cost of an infusion and about parking. " * 300)[:20_000],
        "one-word-20000": "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(20_000)),
        "digits-20000": "0123456789" * 2_000,
        "binary-latin1-20000": junk.decode("latin-1"),
        "binary-utf8-replaced-20000": junk.decode("utf-8", errors="replace")[:20_000],
        "nul-and-controls-20000": "\x00\x01\x02\x1b\x7f" * 4_000,
        "emoji-2000": "\U0001F642" * 2_000,
        "punctuation-2000": "?!" * 1_000,
        "lone-surrogates": "\ud800\udfff" * 100,
    }


HOSTILE = _hostile_inputs()


def _check_in_child(guard, text: str, connection) -> None:
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm", encoding="ascii") as statm:
            in_use = int(statm.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (in_use + 2 * 1024**3, hard))
    except (OSError, ValueError):
        pass
    try:
        guard.check("hello there")  # warm up the child's copy
        started = time.perf_counter()
        result = guard.check(text)
        elapsed_ms = (time.perf_counter() - started) * 1000
        connection.send(("ok", result.category, elapsed_ms))
    except BaseException:  # noqa: BLE001 - report any crash to the parent
        connection.send(("crash", traceback.format_exc(limit=3), 0.0))
    finally:
        connection.close()


def _timed_check(guard, text: str) -> tuple[str | None, float]:
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_check_in_child, args=(guard, text, sender), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(HARD_LIMIT_S):
            pytest.fail(f"the guard did not finish within {HARD_LIMIT_S} s (budget {FAST_MS} ms)")
        status, detail, elapsed_ms = receiver.recv()
    except EOFError:
        pytest.fail("the guard's process died (out of memory?)")
    finally:
        child.kill()
        child.join()
        receiver.close()
    if status == "crash":
        pytest.fail(f"the guard crashed:\n{detail}")
    return detail, elapsed_ms


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_does_not_crash_and_is_fast(guard, name: str) -> None:
    # Each run is a fresh process; on a shared machine one run can be slowed by a neighbour, so
    # the fastest of up to TIMED_RUNS is held to the budget (a slow guard is slow in every run).
    timings = []
    for _ in range(TIMED_RUNS):
        category, elapsed_ms = _timed_check(guard, HOSTILE[name])
        assert category in (None, "crisis", "emergency", "medical")
        timings.append(elapsed_ms)
        if elapsed_ms < FAST_MS:
            break

    assert min(timings) < FAST_MS, f"{name}: {', '.join(f'{ms:.0f}' for ms in timings)} ms"


def test_the_timing_harness_measures_an_ordinary_message(guard) -> None:
    category, elapsed_ms = _timed_check(guard, "I want to kill myself")

    assert category == "crisis"
    assert 0 < elapsed_ms < FAST_MS


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("vomité dos veces desde mi sesión de ayer", "treatment_reaction"),
        ("tengo mareos fuertes y no se me quitan", "personal_symptom"),
        ("estoy embarazada de tres meses, me puedo hacer la infusion?", "pregnancy"),
        ("padezco de epilepsia, eso es un problema?", "personal_condition"),
        ("mi papa tiene presion alta y quiere probar", "personal_condition"),
        ("tengo ansiedad, me ayudaria la ketamina?", "personal_verdict"),
    ],
)
def test_spanish_personal_medical_questions_go_to_staff(guard, text: str, rule: str) -> None:
    result = guard.check(text)

    assert (result.category, result.rule) == ("medical", rule)


@pytest.mark.parametrize(
    "text",
    [
        "me muero de hambre, a qué hora abren?",
        "es normal sentir mareo después de la infusión?",
        "cuanto cuesta la consulta para mi mamá?",
        "el martes le sirve a mi esposo?",
        "estoy muerta de cansancio del trabajo jaja",
        "qué efectos secundarios tiene la ketamina en general?",
    ],
)
def test_spanish_everyday_and_general_messages_are_not_personal_medical(guard, text: str) -> None:
    assert guard.check(text).category is None


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("friday works, assuming i make it until then", "crisis"),  # not expecting to be alive
        ("spent last night looking up how many it would take to die", "crisis"),  # researching means
        ("cnt breth pls", "emergency"),  # panic shorthand
        ("is it a bad idea for her with the bipolar", "medical"),  # a relative's suitability
        ("i felt super dizzy after the last session, is that ok", "medical"),  # own reaction
        ("it has to start helping this month or else i'm done", "crisis"),  # last resort, as an ultimatum
        ("my disability check runs out in june and so will i", "crisis"),  # own end beside an expiry
        ("can i take the bus home afterwards", None),  # getting home, not a medicine
    ],
)
def test_kinds_found_missing_by_a_blind_set(guard, text: str, category: str) -> None:
    assert guard.check(text).category == category


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("my roommate felt it right away, is that normal for most patients", None),  # asked about people
        ("is that normal for someone like me", "medical"),  # ...unless the writer is among them
        ("i got the shakes after my infusion, is that normal?", "medical"),  # own reaction
        ("our deacon claims folks get addicted to it", None),  # others' addiction, hearsay
        ("my nephew gets addicted to everything, is it risky for him", "medical"),  # a relative's
        ("las consultas tambien son por video?", None),  # Spanish "also" is not the sleeping pill
        ("i take ambein at night, any problem", "medical"),  # a misspelt medicine still is one
    ],
)
def test_people_in_general_and_spanish_words_are_not_the_writer(guard, text: str, category: str) -> None:
    assert guard.check(text).category == category


@pytest.mark.parametrize(
    "text",
    [
        "wednesday is good for me",
        "would 4:30 work for me",
        "any morning next week is fine for my dad",
        "the 2pm slot is ok for me",
        "el viernes en la tarde esta bien para mi",
    ],
)
def test_a_time_that_suits_the_writer_is_not_a_medical_verdict(guard, text: str) -> None:
    assert guard.check(text).category is None


@pytest.mark.parametrize(
    "text",
    [
        "is it ok for me",
        "would this treatment work for me",
        "is a morning infusion good for me",
        "is ketamine safe for me on tuesday",
    ],
)
def test_the_same_words_about_the_treatment_are_a_medical_verdict(guard, text: str) -> None:
    result = guard.check(text)
    assert (result.category, result.rule) == ("medical", "personal_verdict")


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("can an actual human ring me back tomorrow", "human"),  # a person asked to reach the writer
        ("i'd like to speak with whoever sets up payment plans", "human"),  # the one who handles it
        ("are you an actual human?", None),  # a question about the assistant
        ("does anybody at the front desk speak Somali? my uncle has questions", "human"),  # an interpreter
        ("do you speak spanish", None),  # a question about the assistant's language
    ],
)
def test_requests_for_a_particular_person(guard, text: str, category: str | None) -> None:
    assert guard.check(text).category == category


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("SI has been rough this week, whats the cost", "crisis"),  # suicidal ideation, as written
        ("had SI on and off since spring", "crisis"),
        ("SI, el jueves en la mañana", None),  # Spanish "yes"
        ("SI POR FAVOR", None),  # all capitals
        ("si, thursday at 4 works", None),  # lower case
    ],
)
def test_si_is_suicidal_ideation_unless_it_says_yes(guard, text: str, category: str | None) -> None:
    assert guard.check(text).category == category


@pytest.mark.parametrize(
    "text", ["ya me quiero suicidar", "tengo ideas suicidas otra vez", "mi hermano dice que se va a suicidar"]
)
def test_spanish_suicide_in_its_inflected_forms(guard, text: str) -> None:
    assert guard.check(text).category == "crisis"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("a voice keeps telling me to step off the platform and die", "crisis"),  # command hallucinations
        ("the voices say she should hurt herself", "crisis"),
        ("did my last message come through? did u get my last text", None),  # about the chat itself
        ("i need a person to look at this charge", "human"),
        ("want somebody to fix that bill please", "human"),
        ("my daughter has bad anxiety, would your doctors accept her?", "medical"),  # a relative taken on
        ("my niece is 17 and has bad PTSD, could she get treatment at your place", "medical"),
        ("do you treat anxiety?", None),  # in general
        ("landed 25 lbs of walleye this morning", None),  # a catch, not a body weight
        ("she weighs about 90 pounds, what dose is used", "medical"),
        ("how long before my 10am infusion do i have to stop eating", None),  # fasting
        ("do i have to stop my zoloft", "medical"),
    ],
)
def test_kinds_found_by_blind18(guard, text: str, category: str | None) -> None:
    assert guard.check(text).category == category

