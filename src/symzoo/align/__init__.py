"""Alignment of networks by symmetry group elements: Git Re-Basin weight matching and canonical forms."""

METHODS: tuple[str, ...] = ("naive", "rebasin", "rebasin_scaling", "canonical")
"""The alignment methods of :func:`symzoo.align.rebasin.align_pair` (kept import-free: the Snakefile reads it)."""
