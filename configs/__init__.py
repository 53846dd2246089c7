"""Shipped bench configs, device presets and calibrations (package data)."""
