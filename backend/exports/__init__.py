"""The coded corpus as files other tools read: tables for R, Stata and pandas (rows.py → tables.py,
with about.py's codebook and about file beside them), a REFI-QDA project (qdpx.py) and REFI-QDA
codebooks in and out (codebook.py).

It takes values (tasks, the coding scheme, the model's decisions) and writes files; reading Label
Studio and our own store is worker/exporting.py's, for the command line and the status page.
"""
