"""Prometheus counters and histograms, and the log format of every process; no models.
Imports no other project package.
"""
