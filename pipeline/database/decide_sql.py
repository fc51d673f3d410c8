"""The database rules' statements, one per rule, over a whole file's staged rows.

Each turns away rows into a work table with its code's number from the catalogue
(``{CODE}`` in the text); ``decide.plan`` chooses which of them a file's decision runs.
"""

from __future__ import annotations

from schemas.codes import VERDICT

# Not a rejection: the row matches a stored dependent, to be updated or skipped (no catalogue
# code has this number).
MATCHED = 0


def _sql(text: str) -> str:
    """A statement with the catalogue's verdict numbers in place of ``{CODE}``."""
    return text.format(**VERDICT, stored="{stored}", big="{big}")


def _counting(sql: str, matching: bool) -> str:
    """A limit statement that counts live rows; a matched row is stored already, so it never
    counts towards the limit again."""
    join = "\nLEFT JOIN dependents_matched m ON m.source_row = s.source_row" if matching else ""
    return sql.replace("{unmatched_join}", join).replace(
        "{unmatched}", " AND m.source_row IS NULL" if matching else ""
    )


# ``{stored}``: a dependent stored before this run (a load with its keys set aside has copied
# its own rows into ``dependents`` by the time the rules are decided).
STORED = "COALESCE(d.import_run_id, '') <> :run_id"

REFUSED = _sql("""
INSERT INTO dependents_refused (source_row, verdict)
SELECT s.source_row, CASE WHEN c.id IS NULL THEN {CUSTOMER_NOT_FOUND} ELSE {DEPENDENT_ALREADY_EXISTS} END
FROM dependents_stage s
LEFT JOIN customers c ON c.id = s.customer_id
LEFT JOIN dependents d
       ON s.candidate = 1
      AND d.customer_id = s.customer_id
      AND d.date_of_birth = s.date_of_birth
      AND d.name_key = s.name_key
      AND {stored}
WHERE c.id IS NULL OR d.id IS NOT NULL
""")
# With no dependent stored there is no twin to find: only unknown customers are refused.
UNKNOWN_CUSTOMERS = _sql("""
INSERT INTO dependents_refused (source_row, verdict)
SELECT s.source_row, {CUSTOMER_NOT_FOUND}
FROM dependents_stage s
LEFT JOIN customers c ON c.id = s.customer_id
WHERE c.id IS NULL
""")
# With the foreign key to ``customers`` back before the rules every candidate's customer is
# proven: only the rows a row rule rejected are looked up, and stored twins by a join of their own.
UNKNOWN_AMONG_REJECTED = UNKNOWN_CUSTOMERS + "  AND s.candidate = 0\n"
# Each candidate with a stored twin (the same natural key), and that twin.
WITH_STORED_TWIN = """FROM dependents_stage s
JOIN dependents d
  ON d.customer_id = s.customer_id
 AND d.date_of_birth = s.date_of_birth
 AND d.name_key = s.name_key
 AND {stored}
WHERE s.candidate = 1
"""
TWINS = (
    _sql("""
INSERT INTO dependents_refused (source_row, verdict)
SELECT s.source_row, {DEPENDENT_ALREADY_EXISTS}
""")
    + WITH_STORED_TWIN
)
# A narrow stage holds the rejected rows and the groupings' suspects: the other candidates
# are only in ``dependents``, where their customers are looked up.
UNKNOWN_COPIED = _sql("""
INSERT INTO dependents_refused (source_row, verdict)
SELECT d.source_row, {CUSTOMER_NOT_FOUND}
FROM dependents d
LEFT JOIN customers c ON c.id = d.customer_id
WHERE d.import_run_id = :run_id AND c.id IS NULL
""")
# ``--on-existing update|skip``: a stored twin is a match, not a refusal (its customer exists).
MATCHES = (
    """
INSERT INTO dependents_matched (source_row, dependent_id)
SELECT s.source_row, d.id
"""
    + WITH_STORED_TWIN
)
# A later row of a matched key repeats the row that matched: it changes nothing.
UNMATCH_REPEATS = """
DELETE FROM dependents_matched WHERE source_row IN (SELECT source_row FROM dependents_repeats)
"""
MATCHED_VERDICTS = f"""
INSERT INTO dependents_verdicts (source_row, verdict) SELECT source_row, {MATCHED} FROM dependents_matched
"""
REPEATED = """
INSERT INTO dependents_repeated (customer_id, date_of_birth, name_key, first_row)
SELECT customer_id, date_of_birth, name_key, MIN(source_row)
FROM dependents_stage
WHERE candidate = 1 AND name_key IS NOT NULL
  AND key_hash IN (SELECT key_hash FROM dependents_suspect_keys)
GROUP BY customer_id, date_of_birth, name_key
HAVING COUNT(*) > 1
"""
REPEATS = """
INSERT INTO dependents_repeats (source_row, first_row)
SELECT s.source_row, k.first_row
FROM dependents_stage s
JOIN dependents_repeated k
  ON k.customer_id = s.customer_id AND k.date_of_birth = s.date_of_birth AND k.name_key = s.name_key
LEFT JOIN dependents_refused f ON f.source_row = s.source_row
WHERE s.candidate = 1 AND s.source_row <> k.first_row AND f.source_row IS NULL
"""
# Self-service only: the first live row of each key counts towards its customer's limit.
HELD = """
INSERT INTO dependents_held (customer_id, existing)
SELECT d.customer_id, COUNT(*) FROM dependents d
WHERE d.customer_id IN (SELECT s.customer_id FROM dependents_stage s WHERE s.candidate = 1)
  AND {stored}
GROUP BY d.customer_id
"""
HELD_SUSPECTS = """
INSERT INTO dependents_suspect_customers (customer_hash)
SELECT DISTINCT s.customer_hash FROM dependents_stage s
JOIN dependents_held h ON h.customer_id = s.customer_id
WHERE s.candidate = 1
"""
_CROWDED = """
INSERT INTO dependents_crowded (customer_id, existing)
SELECT {big} s.customer_id, MAX(COALESCE(h.existing, 0))
FROM dependents_stage s
LEFT JOIN dependents_refused f ON f.source_row = s.source_row
LEFT JOIN dependents_repeats r ON r.source_row = s.source_row
LEFT JOIN dependents_held h ON h.customer_id = s.customer_id{unmatched_join}
WHERE s.candidate = 1 AND f.source_row IS NULL AND r.source_row IS NULL{unmatched}
  AND s.customer_hash IN (SELECT customer_hash FROM dependents_suspect_customers)
GROUP BY s.customer_id
HAVING MAX(COALESCE(h.existing, 0)) + COUNT(*) > :limit
"""
_OVER = """
INSERT INTO dependents_over (source_row, existing)
SELECT source_row, existing FROM (
  SELECT s.source_row, k.existing,
    ROW_NUMBER() OVER (PARTITION BY s.customer_id ORDER BY s.source_row) AS n
  FROM dependents_stage s
  JOIN dependents_crowded k ON k.customer_id = s.customer_id
  LEFT JOIN dependents_refused f ON f.source_row = s.source_row
  LEFT JOIN dependents_repeats r ON r.source_row = s.source_row{unmatched_join}
  WHERE s.candidate = 1 AND f.source_row IS NULL AND r.source_row IS NULL{unmatched}
) counted
WHERE existing + n > :limit
"""


CROWDED, CROWDED_MATCHING = _counting(_CROWDED, False), _counting(_CROWDED, True)
OVER, OVER_MATCHING = _counting(_OVER, False), _counting(_OVER, True)
# Every rule's failures in one table. A repeat of a row past the limit is past the limit too;
# otherwise it names the row it repeats.
VERDICT_SQL = tuple(
    _sql(text)
    for text in (
        """
INSERT INTO dependents_verdicts (source_row, verdict) SELECT source_row, verdict FROM dependents_refused
""",
        """
INSERT INTO dependents_verdicts (source_row, verdict, existing)
SELECT source_row, {DEPENDENT_LIMIT_REACHED}, existing FROM dependents_over
""",
        """
INSERT INTO dependents_verdicts (source_row, verdict, ref_row, existing)
SELECT r.source_row,
  CASE WHEN o.source_row IS NULL THEN {DUPLICATE_IN_FILE} ELSE {DEPENDENT_LIMIT_REACHED} END,
  CASE WHEN o.source_row IS NULL THEN r.first_row END,
  o.existing
FROM dependents_repeats r LEFT JOIN dependents_over o ON o.source_row = r.first_row
""",
    )
)
# The verdicts, read back once (a verdict's row missing from a narrow stage is a candidate).
VERDICTS_SQL = f"""
SELECT v.source_row, v.verdict, COALESCE(v.ref_row, -1), COALESCE(v.existing, -1), COALESCE(s.candidate, 1)
FROM dependents_verdicts v LEFT JOIN dependents_stage s ON s.source_row = v.source_row
WHERE v.verdict <> {MATCHED}
ORDER BY v.source_row
"""
# Matched rows are only counted: joined to the stage, as many as the file holds, MariaDB
# (no index on a temporary table's ``source_row``) would read the stage once per row.
MATCHED_SQL = "SELECT COUNT(*) FROM dependents_matched"
