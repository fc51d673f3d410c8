"""Rejected rows assembled from their failures: each chunk's row-rule failures, joined by the
database's verdicts where any fall in the chunk, as one row per rejected row with its codes,
messages, notifications and cells."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future

import pandas as pd

from pipeline.database.decide import Verdicts
from pipeline.rejects import report
from pipeline.rejects.notifications import assemble
from pipeline.rows.spool import Chunk, Spool
from pipeline.timings import Steps


class Draft:
    """The reports, written from the rejected rows as the row rules alone make them while the
    database decides. If no verdict falls in the file they are the reports (``kept``);
    once the decision is known to have any, they are dropped, and written again after."""

    def __init__(self, writers: report.RejectsWriters, decided: Future):
        self.writers: report.RejectsWriters | None = writers
        self.decided = decided

    def add(self, frame: pd.DataFrame) -> None:
        if self.kept() is not None:
            self.writers.add(frame)

    def kept(self) -> report.RejectsWriters | None:
        """The reports so far, if every rejected row is in them as it stands (else dropped)."""
        if self.writers is not None and self._spoilt():
            self.drop()
        return self.writers

    def drop(self) -> None:
        if self.writers is not None:
            self.writers.abandon()
            self.writers = None

    def _spoilt(self) -> bool:
        """The decision is in, and it changes some rows' notes (or failed)."""
        if not self.decided.done():
            return False
        return self.decided.exception() is not None or len(self.decided.result().verdicts.frame) > 0


def early(spool: Spool, report: Callable[[pd.DataFrame], None], steps: Steps) -> list[Counter]:
    """Each chunk's rejected rows as its row-rule failures alone make them, spooled and given
    to ``report`` (as ``Spool.frames`` would give them); returns each chunk's code counts. A
    chunk the database's verdicts leave alone is then done."""
    counts = []
    for chunk in spool.chunks():
        with steps.timing("assembly"):
            notes = notes_of(chunk, chunk.failures)
            batch = spool.keep_early(notes)
            counts.append(Counter(codes_of(notes)))
        if batch.num_rows:
            report(batch.to_pandas())
    return counts


def with_verdicts(
    verdicts: Verdicts, spool: Spool, early: list[Counter], counts: Counter, expected: int
) -> None:
    """Each chunk's rejected rows, spooled: the early ones as they are, or assembled again
    with the database's verdicts where any fall in the chunk (their codes join the row's)."""
    rejected = 0
    for i, ((first, last), batch) in enumerate(zip(spool.ranges, spool.early(), strict=True)):
        found = verdicts.failures(first, last)
        if found.empty:
            spool.add_batch(batch)
            counts.update(early[i])
            rejected += batch.num_rows
            continue
        chunk = spool.chunk(i)
        notes = notes_of(chunk, pd.concat([chunk.failures, found], ignore_index=True))
        spool.add(notes)
        counts.update(codes_of(notes))
        rejected += len(notes)
    spool.seal()
    if rejected != expected:  # the counts before the insert and the rows disagree: a bug
        raise RuntimeError(f"assembled {rejected} rejected rows, counted {expected}")


def notes_of(chunk: Chunk, failures: pd.DataFrame) -> pd.DataFrame:
    """A chunk's rejected rows (row, codes, messages, notifications, cells) from its failures."""
    notes = assemble(failures)
    return notes.reset_index().assign(cells=chunk.cells(notes.index) if len(notes) else [])


def codes_of(notes: pd.DataFrame) -> dict[str, int]:
    """How many rejected rows carry each code."""
    if notes.empty:
        return {}
    return notes["codes"].str.split(";").explode().value_counts().to_dict()
