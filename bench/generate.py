"""Synthetic dependents files of any size, built column-wise (a million rows in about a second).

Every customer gets three dependents, so the self-service limit is not what rejects
rows; ``bad_fraction`` of the rows break one rule each (empty name, future birth
date, unknown gender, 51-character surname, impossible date), spread evenly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

FIRST = np.array(
    ["Abigail", "Lwazi", "Pieter", "Anna", "Naledi", "Oliver", "Zanele", "Themba", "Ravi", "Mia"]
)
LAST = np.array(["Mokoena", "van der Merwe", "Patel", "Dlamini", "Jones", "Khumalo", "Naidoo", "Smith"])
GENDERS = np.array(["Male", "Female", "Non-Binary", ""])
LANGUAGES = np.array(["English", "isiZulu", "Afrikaans", "Sesotho", ""])
HEADER = ["customerId", "firstName", "lastName", "birthDate", "gender", "homeLanguage", "phone", "notes"]
BREAKS = (
    "FIRST_NAME_REQUIRED",
    "BIRTH_DATE_IN_FUTURE",
    "GENDER_INVALID",
    "LAST_NAME_TOO_LONG",
    "BIRTH_DATE_INVALID",
)


def customer_ids(n: int, seed: int = 1) -> np.ndarray:
    """``n`` distinct, reproducible version-4 UUIDs."""
    raw = np.random.default_rng(seed).integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = pd.Series([bytes(r).hex() for r in raw])  # n/3 customers: cheap next to the rows
    return (
        hexed.str[:8]
        + "-"
        + hexed.str[8:12]
        + "-"
        + hexed.str[12:16]
        + "-"
        + hexed.str[16:20]
        + "-"
        + hexed.str[20:]
    ).to_numpy()


def dependents(n: int, customers: np.ndarray, bad_fraction: float = 0.05, seed: int = 2) -> pd.DataFrame:
    """``n`` dependent rows as text, three per customer in shuffled order."""
    rng = np.random.default_rng(seed)
    idx = np.arange(n)
    owner = customers[np.repeat(np.arange(len(customers)), 3)[:n]]
    rng.shuffle(owner)
    born = pd.Timestamp("2008-12-01") + pd.to_timedelta(rng.integers(0, 17 * 365, n), unit="D")
    frame = pd.DataFrame(
        {
            "customerId": owner,
            "firstName": FIRST[idx % len(FIRST)],
            "lastName": pd.Series(LAST[idx % len(LAST)]) + "-" + pd.Series(idx).astype(str),
            "birthDate": born.strftime("%Y-%m-%d"),
            "gender": GENDERS[rng.integers(0, len(GENDERS), n)],
            "homeLanguage": LANGUAGES[rng.integers(0, len(LANGUAGES), n)],
            "phone": pd.Series(rng.integers(0, 10**9, n)).astype(str).str.zfill(10),
            "notes": "",
        },
        dtype="str",
    )
    bad = idx[rng.random(n) < bad_fraction]
    kinds = bad % len(BREAKS)
    frame.loc[bad[kinds == 0], "firstName"] = ""
    frame.loc[bad[kinds == 1], "birthDate"] = "2099-01-01"
    frame.loc[bad[kinds == 2], "gender"] = "Unknown"
    frame.loc[bad[kinds == 3], "lastName"] = "L" * 51
    frame.loc[bad[kinds == 4], "birthDate"] = "2019-02-30"
    frame.loc[bad, "notes"] = np.array(BREAKS)[kinds]
    return frame


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))
    return path


def write_customers(customers: np.ndarray, path: Path) -> Path:
    return write_csv(pd.DataFrame({"id": customers}, dtype="str"), path)


def files(directory: Path, n: int, bad_fraction: float = 0.05) -> tuple[Path, Path]:
    """``customers.csv`` (n/3 customers) and ``dependents-<n>.csv`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    customers = customer_ids(max(1, -(-n // 3)))
    return (
        write_customers(customers, directory / "customers.csv"),
        write_csv(dependents(n, customers, bad_fraction), directory / f"dependents-{n}.csv"),
    )


def stored_half(path: Path, out: Path) -> Path:
    """Every other row of the file at ``path``, each with another phone number: imported first,
    it makes the whole file half updates (the phone changes back) and half new rows."""
    frame = pd.read_csv(path, dtype="str", keep_default_na=False).iloc[::2]
    return write_csv(frame.assign(phone="0000000000"), out)
