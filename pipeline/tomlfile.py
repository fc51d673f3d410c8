"""Reading the TOML files a user writes (settings, mappings): one line naming the file when
it cannot be read or parsed."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pipeline.errors import UsageError


def read(path: Path) -> dict[str, Any]:
    """The file's tables; exit 2 naming the file if it cannot be read or is not valid TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
