"""Synthgate: released, versioned, quality-gated synthetic datasets.

One module per stage (`ingest`, `fit`, `generate`, `blend`, `validate`, `release`), each with pure
functions on DataFrames and one `run(...)` edge that does the I/O. DVC, Airflow and the tests all
call the same `run`.
"""

__version__ = "0.1.0"

STAGES = ("ingest", "fit", "generate", "blend", "validate", "release")
