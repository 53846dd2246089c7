"""labrig: instrument control and acquisition for optoelectronic device labs.

Kept import-light on purpose: ``labrig --help`` must start fast, so heavy libraries
(pymeasure, h5py, scipy, pyvisa) are imported only by the modules that need them, and
pandas, which pymeasure imports for a ``Results`` class labrig does not use, only when
something uses it (``labrig.deferred``).
"""

from labrig.deferred import defer

__version__ = "0.1.0"

defer("pandas")
