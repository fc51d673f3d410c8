"""CareCycle API v2, ``POST /v2/customers/{id}/dependents``: the full dependent record.

Every body field is optional; the limits and enums are the contract's own (its
create-customer-dependent request). The customer is the path parameter ``id``:
required, a UUID.
"""

from schemas.fields import INT32_MAX, INT32_MIN
from schemas.rules import Profile, Rule

GENDERS = ("Male", "Female", "Non-Binary", "Other", "Prefer Not to Say")
RELATIONSHIP_TYPES = ("Spouse", "Child", "Parent", "Sibling", "Other")

RULES: dict[str, Rule] = {
    "customerId": Rule(required=True),
    "firstName": Rule(max_length=255),
    "middleName": Rule(max_length=255),
    "lastName": Rule(max_length=255),
    "birthDate": Rule(not_future=True),
    "gender": Rule(one_of=GENDERS),
    "relationshipType": Rule(one_of=RELATIONSHIP_TYPES),
    "annualIncome": Rule(minimum=INT32_MIN, maximum=INT32_MAX),
    "phone": Rule(max_length=50),
    "email": Rule(max_length=255),
    "ssn": Rule(max_length=11),
    "isCovered": Rule(),
    "coverageStartDate": Rule(),
    "coverageEndDate": Rule(not_before=("coverageStartDate", "COVERAGE_END_BEFORE_START")),
    "isActive": Rule(),
    "notes": Rule(max_length=1000),
}

PROFILE = Profile("carecycle", "CareCycle v2 create customer dependent", RULES)
