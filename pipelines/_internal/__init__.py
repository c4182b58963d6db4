"""Private helpers of the pipelines package; not public API."""
