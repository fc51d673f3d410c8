"""Keeping personal data in its place: SSNs masked in reports unless asked for, and report
files readable by their owner only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

import pandas as pd


def open_private(path: Path, mode: str = "w", **kwargs: Any) -> IO:
    """Open for writing, readable by its owner only (0600) from the moment it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, mode, **kwargs)


def mask_ssn(cells: pd.Series) -> pd.Series:
    """``12-345-6789`` -> ``**-***-6789``, ``1234567890123`` -> ``*********0123``: every letter
    and digit but the last four is masked, separators and length kept, so a reviewer sees the
    shape of a malformed SSN without its digits. Four characters or fewer are masked whole."""
    text = cells.astype("str").str.strip()
    short = text.str.len() <= 4
    masked = text.str[:-4].str.replace(ALPHANUMERIC, "*", regex=True) + text.str[-4:]
    return masked.where(~short, text.str.replace(ALPHANUMERIC, "*", regex=True)).where(text.notna())


ALPHANUMERIC = r"[0-9A-Za-z]"
