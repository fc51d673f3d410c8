"""Bulk import of dependents from CSV/XLSX, validated against the CareCycle and Add Dependent contracts."""

__version__ = "0.1.0"
