"""Opening hours the tests build clinic profiles with."""

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ALWAYS_OPEN = {day: "00:00-24:00" for day in WEEKDAYS}
# The sample clinic's hours: weekdays 8-6 (Friday 8-4), Saturday morning, closed Sunday.
WEEKDAY_HOURS = {
    "monday": "08:00-18:00",
    "tuesday": "08:00-18:00",
    "wednesday": "08:00-18:00",
    "thursday": "08:00-18:00",
    "friday": "08:00-16:00",
    "saturday": "09:00-13:00",
    "sunday": "closed",
}
