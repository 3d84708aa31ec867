"""The range of every integer read from a request (ids in paths, bodies and query strings,
strengths, times, cursors): a value past its column's range answers 400 naming it, or 404 for
an id in a path, before any query. Past signed 64 bits SQLite's driver raises OverflowError and
PostgreSQL refuses a bigint, a 500 either way. Plain Python, so that config/ (the URL map, the
schema settings), the API's fields (annotate/api/fields.py) and the pages all read it."""

from __future__ import annotations

import re

# Signed column ranges as PostgreSQL stores them; SQLite's INTEGER is the 64-bit one.
INT16_MAX = 2**15 - 1  # PositiveSmallIntegerField (a comparison's strength)
INT32_MAX = 2**31 - 1  # AutoField, PositiveIntegerField
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # BigAutoField, BigIntegerField

# Ids of this project's models: DEFAULT_AUTO_FIELD is BigAutoField.
ID_MAX = INT64_MAX
# auth's users keep Django's AutoField, and a model version's number is a PositiveIntegerField.
ID32_MAX = INT32_MAX

_WHOLE_NUMBER = re.compile(r"-?[0-9]+")


def bounded_int(text: str | None, *, name: str, min_value: int, max_value: int) -> int:
    """`text` (a query-string or form value) as an int from min_value to max_value; else a
    ValueError whose message names `name` and the range."""
    problem = f"{name} must be a whole number from {min_value} to {max_value}."
    text = (text or "").strip()
    if not _WHOLE_NUMBER.fullmatch(text):
        raise ValueError(problem)
    try:
        value = int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise ValueError(problem) from None
    if not min_value <= value <= max_value:
        raise ValueError(problem)
    return value


class IdConverter:
    """`<id:name>` in a URL pattern: an id of one of this project's models, 1 to ID_MAX. Other
    digits do not match the pattern, so the answer is the 404 of an unknown id."""

    regex = "[0-9]+"
    max_value = ID_MAX

    def to_python(self, value: str) -> int:
        # A ValueError here means "no match" to Django's URL resolver.
        return bounded_int(value, name="id", min_value=1, max_value=self.max_value)

    def to_url(self, value: int) -> str:
        return str(value)


class Id32Converter(IdConverter):
    """`<id32:name>`: a user's id or a model version's number, 1 to ID32_MAX."""

    max_value = ID32_MAX


# Registered by config/urls.py; their schemas are drf-spectacular's PATH_CONVERTER_OVERRIDES
# (config/settings.py), so the OpenAPI schema states each path id's range.
PATH_CONVERTERS = {"id": IdConverter, "id32": Id32Converter}
PATH_CONVERTER_SCHEMAS = {
    name: {
        "type": "integer",
        "format": "int64" if converter.max_value > INT32_MAX else "int32",
        "minimum": 1,
        "maximum": converter.max_value,
    }
    for name, converter in PATH_CONVERTERS.items()
}
