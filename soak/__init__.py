"""Reliability runs against a live hlstrio server: soak, load and API fuzzing (not the suite).

`python -m soak soak|load|fuzz --help`; the nox sessions of the same names run them. Each starts
a real server (`python -m hlstrio serve`) on a loopback port, drives it over real HTTP, checks
what it left behind through the public API, /proc and the temp dir, and stops it.
"""
