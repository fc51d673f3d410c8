"""Rejected rows: their notifications and the reports a reviewer opens."""
