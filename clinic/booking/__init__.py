"""Booking consultations: the service, preferred-time parsing and scheduling backends."""
