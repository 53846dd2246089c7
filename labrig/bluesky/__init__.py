"""labrig under Bluesky: ophyd-async devices backed by labrig's drivers (``devices``) and
the queue server's startup for one bench (``queue``).

Needs the ``bluesky`` extra (``pip install 'labrig[bluesky]'``); nothing in labrig's core
or ``labrig --help`` imports this package.
"""
