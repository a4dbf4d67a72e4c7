"""Probe programs gotrace builds for a target architecture (C sources, package data)."""
