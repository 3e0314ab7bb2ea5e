"""Repositories: the only place that writes SQL. Each takes a `Session` opened by the
caller's unit of work.
"""
