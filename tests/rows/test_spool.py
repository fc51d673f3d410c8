"""The spool keeps each chunk's cells and failures, then the rejected rows, in files that it
removes when it closes, whether the import finished or failed half-way; the next import
removes what an import killed outright left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from pipeline.rows.spool import Spool, sweep


def chunk(first: int, cells: list[list[str]]) -> pd.DataFrame:
    frame = pd.DataFrame(cells, dtype="str")
    frame.index = pd.RangeIndex(first, first + len(cells), name="row")
    return frame


def failures(rows: list[int], code: str = "FIRST_NAME_REQUIRED") -> pd.DataFrame:
    return pd.DataFrame(
        {"row": rows, "code": [code] * len(rows), "details": ['{"field": "firstName"}'] * len(rows)}
    )


@pytest.fixture
def spool():
    kept = Spool()
    yield kept
    kept.close()


def test_chunks_come_back_in_file_order_with_their_failures_and_cells(spool):
    spool.keep(chunk(2, [["C1", ""], ["C1", "Ann"]]), failures([2]))
    spool.keep(chunk(4, [["C2", "Bo"], ["C3", ""]]), failures([5]))
    back = list(spool.chunks())
    assert [(c.first, c.last) for c in back] == [(2, 3), (4, 5)]
    assert back[1].failures.to_dict("records") == [
        {"row": 5, "code": "FIRST_NAME_REQUIRED", "details": '{"field": "firstName"}'}
    ]
    assert back[0].cells(pd.Index([2])) == ['["C1", ""]']
    assert back[1].cells(pd.Index([4, 5])) == ['["C2", "Bo"]', '["C3", ""]']


def test_rejected_rows_are_read_back_once_sealed(spool):
    spool.keep(chunk(2, [["C1", ""]]), failures([2]))
    list(spool.chunks())
    row = {
        "row": 2,
        "codes": "FIRST_NAME_REQUIRED",
        "messages": "m",
        "notifications": "[]",
        "cells": '["C1", ""]',
    }
    spool.add(pd.DataFrame([row]))
    spool.add(pd.DataFrame(columns=list(row)))  # a chunk with nothing rejected adds nothing
    spool.seal()
    frames = list(spool.frames())
    assert len(frames) == 1 and frames[0].to_dict("records") == [row]
    assert next(spool.frames()).equals(frames[0])  # read again, by another reader


@pytest.mark.parametrize("stage", ["reading", "assembling", "sealed"])
def test_close_removes_the_files_however_far_the_import_got(stage):
    spool = Spool()
    spool.keep(chunk(2, [["C1", ""]]), failures([2]))
    if stage != "reading":
        list(spool.chunks())
    if stage == "sealed":
        spool.seal()
    spool.close()
    assert not spool.dir.exists()


def test_a_file_with_no_rows_spools_no_chunks(spool):
    spool.keep(chunk(2, []), failures([]))
    assert list(spool.chunks()) == []
    spool.seal()
    assert list(spool.frames()) == []


def spool_in_child(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """Another process that opens a spool in ``tmp_path`` and keeps running until killed."""
    code = (
        "from pipeline.rows.spool import Spool; import time; "
        "s = Spool(); print(s.dir, flush=True); time.sleep(600)"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    return child, Path(child.stdout.readline().strip())


def test_a_killed_imports_spool_is_removed_by_the_next_and_a_running_ones_is_not(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    child, theirs = spool_in_child(tmp_path)
    try:
        assert (theirs / "lock").exists()
        Spool().close()
        assert theirs.exists()  # its import is still running
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert theirs.exists()  # killed outright: nothing of it could clean up
    ours = Spool()
    assert not theirs.exists()
    assert ours.dir.exists()
    ours.close()
    assert list(tmp_path.iterdir()) == []


def test_a_folder_without_a_lock_is_left_alone(tmp_path):
    stranger = tmp_path / "dependents-notaspool"
    stranger.mkdir()
    assert sweep(tmp_path) == []
    assert stranger.exists()
