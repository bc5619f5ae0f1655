"""The batch item-indexing job, its input readers, and the item writer it shares with the
online indexing worker."""

from service.indexing.job import IndexJobError, JobReport, run_index_job
from service.indexing.readers import ReaderError
from service.indexing.writer import ItemWriter

__all__ = ["IndexJobError", "ItemWriter", "JobReport", "ReaderError", "run_index_job"]
