"""The dicomrx errors other modules catch (kept apart so tasks and ingest can import each other's module)."""


class IngestError(Exception):
    """The object could not be ingested for a reason outside the object (file missing, database down)."""
