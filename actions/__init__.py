"""Custom actions: thin adapters from Rasa to the clinic package (``clinic``)."""
