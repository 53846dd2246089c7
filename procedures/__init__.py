"""labrig's measurement procedures, one module each.

Which procedures ``labrig run`` offers, under what names, with which report figure and
simulated bench, is their entry in ``labrig.registry`` (``MEASUREMENTS``).
"""
