"""Clinic staff: accounts, the escalation inbox, audit, notifications and the console."""
