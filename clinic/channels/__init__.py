"""Patient channels: the SMS line's rules and the website chat's own server."""

SMS_CHANNEL = "twilio"
"""The SMS line's Rasa channel name (``addons/twilio_channel.py``). On it the conversation id is
the patient's phone number (E.164), and domain.yml's ``channel: twilio`` response variants apply."""
