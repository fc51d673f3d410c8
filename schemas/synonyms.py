"""Words other systems use for the allowed values, for ``dependents mapping suggest`` to
propose (a person confirms them in the draft). Keys are folded (trimmed, lower case)."""

from __future__ import annotations

SYNONYMS: dict[str, dict[str, str]] = {
    "gender": {
        "m": "Male",
        "man": "Male",
        "boy": "Male",
        "f": "Female",
        "woman": "Female",
        "girl": "Female",
        "nb": "Non-Binary",
        "non binary": "Non-Binary",
        "nonbinary": "Non-Binary",
    },
    "relationshipType": {
        "son": "Child",
        "daughter": "Child",
        "kid": "Child",
        "stepson": "Child",
        "stepdaughter": "Child",
        "wife": "Spouse",
        "husband": "Spouse",
        "partner": "Spouse",
        "mother": "Parent",
        "father": "Parent",
        "mom": "Parent",
        "dad": "Parent",
        "brother": "Sibling",
        "sister": "Sibling",
    },
}
