"""Simulated instruments and the device physics behind them (the simulated physics)."""
