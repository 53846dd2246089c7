"""Instrument drivers behind the interfaces in labrig.interfaces."""
