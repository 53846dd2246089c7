"""labrig's measurement procedures, one module each.

Which procedures ``labrig run`` offers, under what names, with which report figure and
simulated bench, is their entry in ``labrig.registry`` (``MEASUREMENTS``).
"""

from labrig.deferred import defer_pymeasure_packages

# before any procedure imports pymeasure.experiment's parameters module (labrig.deferred)
defer_pymeasure_packages()
