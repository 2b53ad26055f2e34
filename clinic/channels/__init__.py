"""Patient channels: the SMS line's rules and the website chat's own server."""

SMS_CHANNEL = "twilio"
"""The SMS line's Rasa channel name (``addons/twilio_channel.py``). On it the conversation id is
the patient's phone number (E.164), and domain.yml's ``channel: twilio`` response variants apply."""

MEDIA_METADATA_KEY = "media"
"""Message metadata: how many pictures or files came with the text (set by the SMS line). The
safety layer reads a medical term written with a picture ("what's this rash?") as the patient's own."""

REQUEST_ID_PREFIX = "request-"
"""Message ids of this form name one client request, which a proxy may deliver twice (nginx passes
a request on to another Rasa instance when the first fails before answering): a message with such
an id is processed once per conversation (``addons/rasa_patches/repeated_requests.py``)."""
