"""Helpers for the integration tests: entry points of worker subprocesses and test robots.

Each ``*_worker`` module is run as ``python -m tests.helpers.<module>`` from the project
root, so that every worker is a real, separate process with its own Database object.
"""
