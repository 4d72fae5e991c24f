"""Crosstalk benchmarks: `python -m bench [--small] [--only NAME]`. See bench/run.py and README.md."""
