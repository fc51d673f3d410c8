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
    """``123-45-6789`` -> ``***-**-6789``: only the last four characters survive."""
    text = cells.astype("str")
    present = text.notna() & (text.str.strip() != "")
    return text.where(~present, "***-**-" + text.str.strip().str[-4:])
