"""Add Dependent v2.0 (Beta), ``POST /v2.0/customers/{profileKey}/dependents``.

The stricter contract: names required and at most 50 characters, a real birth
date not in the future that makes the dependent under 18, gender and home
language from the lookups (the database's, filled from ``schemas/lookups/``) or empty. Any CareCycle column
the file also carries is held to the CareCycle rule for it.
"""

from schemas import carecycle, lookups
from schemas.rules import Profile, Rule

OWN: dict[str, Rule] = {
    "customerId": Rule(required=True),
    "firstName": Rule(required=True, max_length=50),
    "lastName": Rule(required=True, max_length=50),
    "birthDate": Rule(required=True, not_future=True, under_age=18),
    "gender": Rule(one_of=lookups.load("genders"), lookup="genders"),
    "homeLanguage": Rule(one_of=lookups.load("home_languages"), lookup="home_languages"),
}

RULES: dict[str, Rule] = {**OWN, **{k: v for k, v in carecycle.RULES.items() if k not in OWN}}

PROFILE = Profile("add-dependent", "Add Dependent v2.0", RULES)
