"""addons.rasa_patches.tracker_copy: a copy holds what Rasa's replayed copy holds."""

from __future__ import annotations

from tests.addons.rasa_patches.helpers import original, served_trackers, story_trackers, tracker_state


def test_tracker_copies_hold_what_rasas_replayed_copies_hold(patched: None) -> None:
    domain, _ = story_trackers()
    trackers = served_trackers()
    assert any(t.active_loop for t in trackers) and any(t.model_id for t in trackers)
    trackers[-4].past_states(domain)  # with the states memo on it
    for tracker in trackers:
        ours = tracker.copy()
        theirs = original(lambda tracker=tracker: tracker.copy())
        assert ours is not tracker
        assert tracker_state(ours) == tracker_state(theirs)


def test_a_tracker_copy_can_be_changed_without_touching_the_original(patched: None) -> None:
    from rasa.shared.core.events import ActionExecuted, ActiveLoop, SlotSet

    for tracker in served_trackers()[::5]:
        before = tracker_state(tracker)
        copied = tracker.copy()
        copied.update(ActiveLoop("booking_form"))
        copied.update(SlotSet("patient_name", "Alex"))
        copied.reject_action("booking_form")
        copied.update(ActionExecuted("action_listen"))
        copied.slots["offered_slots"].value = ["a slot"]
        assert tracker_state(tracker) == before


def test_unusual_trackers_are_copied_by_replaying_their_events(patched: None) -> None:
    from rasa.shared.core.events import SlotSet
    from rasa.shared.core.trackers import DialogueStateTracker

    class Custom(DialogueStateTracker):
        pass

    domain, _ = story_trackers()
    events = [SlotSet("patient_name", "Sam")]
    capped = DialogueStateTracker.from_events("c", events, domain.slots, max_event_history=5)
    custom = Custom.from_events("c", events, domain.slots)
    tagged = DialogueStateTracker.from_events("c", events, domain.slots)
    tagged.note = "kept by someone else"
    for tracker in (capped, custom, tagged):
        assert tracker_state(tracker.copy()) == tracker_state(original(lambda tracker=tracker: tracker.copy()))
    assert type(custom.copy()) is DialogueStateTracker  # as Rasa's init_copy makes it
    assert not hasattr(tagged.copy(), "note")
