"""Benchmarks for `nox -s bench`: each reports a figure beside a baseline from the same run."""
