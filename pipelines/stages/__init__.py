"""One module per stage, in the order a table travels: extract, train, generate, write, validate, report.

Each stage reads the previous stage's Parquet from the run directory and writes its own.
"""
