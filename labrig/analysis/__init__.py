"""Derived figures users report in papers; each function tested against hand values."""
