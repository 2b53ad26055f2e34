"""The staff console: a small web app where clinic staff work escalated conversations.

``python -m clinic.staff.console`` serves it (see :mod:`clinic.staff.console.__main__`);
:func:`clinic.staff.console.app.create_app` builds it. Pages are server-rendered (Jinja2, escaped),
with a little JavaScript that polls JSON endpoints for live updates; ``/api/`` offers the same
capabilities to integrations with bearer tokens.
"""
