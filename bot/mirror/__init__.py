"""The NetSuite customer mirror: a local, searchable copy of customers, terms and sales reps.

`bot.mirror.ingest` fills it (the `credit-desk ingest` command and the `mirror_refresh` worker job);
everything else reads it through `storage.repositories`.
"""

from bot.mirror.ingest import (
    IngestOptions,
    IngestParts,
    IngestProgress,
    IngestReport,
    MirrorIngest,
    NetSuiteNotConfigured,
    run_ingest,
)

__all__ = [
    "IngestOptions",
    "IngestParts",
    "IngestProgress",
    "IngestReport",
    "MirrorIngest",
    "NetSuiteNotConfigured",
    "run_ingest",
]
