"""Kollega's robots, one package each."""
