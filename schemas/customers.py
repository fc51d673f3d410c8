"""The rules a customer row must meet to be loaded (``dependents customers load``): an id
that is a UUID, and text that fits its column and holds no control character. A row that
breaks one is rejected with the code, as a dependent's row would be; the rest load."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextField:
    column: str  # in the ``customers`` table
    name: str  # as the API and the codes call it
    limit: int  # characters the column holds
    too_long: str  # the code for a longer value
    not_text: str  # the code for a control character, a noncharacter or U+FFFD


ID_REQUIRED = "CUSTOMER_ID_REQUIRED"
ID_INVALID = "CUSTOMER_ID_INVALID"
TEXT = (
    TextField("first_name", "firstName", 255, "FIRST_NAME_TOO_LONG", "FIRST_NAME_INVALID"),
    TextField("last_name", "lastName", 255, "LAST_NAME_TOO_LONG", "LAST_NAME_INVALID"),
    TextField("email", "email", 255, "EMAIL_TOO_LONG", "EMAIL_INVALID"),
    TextField("phone", "phone", 50, "PHONE_TOO_LONG", "PHONE_INVALID"),
)
