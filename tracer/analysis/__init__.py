"""Offline: everything that reads a saved session (report, compare, export, plot, images).

Reads through ``tracer.session`` only and never imports ``capture``: a
session captured on a CI machine is analysed anywhere, without privileges.
"""
