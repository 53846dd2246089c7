"""Shared fixtures: the shipped configs, and a writable output directory per test."""

from __future__ import annotations

import pytest


@pytest.fixture
def sim_config():
    from labrig.config import load_config

    return load_config("sim")
