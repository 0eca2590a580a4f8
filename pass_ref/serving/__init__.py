"""Serving PaSS look-ahead drafting in an engine (vLLM): export a shared-vector set as a draft
checkpoint for parallel drafting (``export``), or draft with distinct vectors through a custom
proposer (``vllm``, imported inside vLLM's worker). ``docs/serving.md`` explains both routes."""

from .export import ExportReport, check_vllm_draft, export_vllm, spare_row, write_hf_folder

__all__ = ["ExportReport", "check_vllm_draft", "export_vllm", "spare_row", "write_hf_folder"]
