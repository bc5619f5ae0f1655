"""The batch item-indexing job and its input readers."""

from service.indexing.job import IndexJobError, JobReport, run_index_job, scalar_fields
from service.indexing.readers import ReaderError

__all__ = ["IndexJobError", "JobReport", "ReaderError", "run_index_job", "scalar_fields"]
