"""Benchmark scripts: each prints its figures (see README.md here); run them as ``python -m benchmarks.<name>``.

A regular package: opacus wheels ship a top-level ``benchmarks`` package of their own, which would otherwise
shadow this folder.
"""
