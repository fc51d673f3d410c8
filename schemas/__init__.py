"""The contracts' rules as declarations: fields, profiles, lookups and the code catalogue."""

from schemas import add_dependent, carecycle
from schemas.rules import Profile

PROFILES: dict[str, Profile] = {p.name: p for p in (add_dependent.PROFILE, carecycle.PROFILE)}
DEFAULT_PROFILE = add_dependent.PROFILE.name
