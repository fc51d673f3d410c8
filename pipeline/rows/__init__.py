"""Rows: read a file, match its columns, normalise and check every row."""
