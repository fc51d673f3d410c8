"""An import's reports, written hidden and published only once its data has settled."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from pipeline.database.ledger import Run
from pipeline.errors import ReportError, ReportsNotPublished
from pipeline.rejects import report


class Pending:
    """An import's reports, written while its data is still being inserted (in a hidden
    folder beside their final place) and published only once the import has settled, so a
    failed import leaves no report that looks finished. Publishing only renames files in
    one folder: once the data is committed, nothing is left that a full disk can stop."""

    def __init__(self, out_dir: Path, stem: str, layout: report.Layout):
        self.out_dir, self.stem, self.layout = out_dir, stem, layout
        self.created = _missing(out_dir)  # the folders ``prepare`` makes, innermost first
        self.partial = out_dir / f".{stem}.partial"
        self.paths: dict[str, Path] = {}
        self.committed = False  # set by the import once its data is committed

    def prepare(self) -> None:
        """Make the hidden folder before any database work, so a report folder that cannot be
        written is a one-line error at the start of an import, not at its end."""
        try:
            self.partial.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ReportError(f"cannot write the reports in {self.out_dir}: {exc.strerror or exc}") from None

    def draft(self) -> report.RejectsWriters:
        """The rejects reports, opened in the hidden folder for rows known before the run's end
        (``write`` closes them, or ``discard`` removes them)."""
        return report.RejectsWriters(self.partial, self.stem, self.layout)

    def write(
        self,
        run: Run,
        counts: Counter,
        rejects: Iterable[pd.DataFrame],
        draft: report.RejectsWriters | None = None,
    ) -> None:
        """Every report and the summary (naming the reports' final paths), still hidden: from
        ``rejects``, or, given a ``draft`` that already holds every rejected row, from it."""
        if draft is None:
            self.paths = report.write_rejects(self.partial, self.stem, run, counts, self.layout, rejects)
        else:
            self.paths = draft.close(run, counts)
        final = {kind: self.out_dir / path.name for kind, path in self.paths.items()}
        self.paths["summary"] = report.write_summary(
            report.summary_path(self.partial, self.stem), run, counts, self.layout.include_pii, final
        )

    def publish(self, run: Run) -> dict[str, Path]:
        """Move the reports into place. Called after the commit: a failure here cannot undo
        it, so it says what was committed and how to get the reports back."""
        final = {kind: self.out_dir / path.name for kind, path in self.paths.items()}
        try:
            for kind, path in self.paths.items():
                path.replace(final[kind])
            self.partial.rmdir()
        except OSError as exc:
            raise self.unpublished(run, exc.strerror or str(exc)) from None
        return final

    def unpublished(self, run: Run, reason: str) -> ReportsNotPublished:
        return ReportsNotPublished(
            f"run {run.id} finished ({run.status}), but its reports could not be moved into "
            f"{self.out_dir} ({reason}); `dependents report {run.id}` writes them again",
            run.exit_code,
        )

    def discard(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)
        for folder in self.created:
            if not folder.is_dir() or any(folder.iterdir()):
                break
            folder.rmdir()


def _missing(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, innermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing
