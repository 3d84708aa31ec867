"""The API's integer input fields, each bounded by the range its column allows
(annotate/integers.py): a value past it is a 400 naming the field before any query, and the
OpenAPI schema states the bounds (minimum, maximum), which Schemathesis then probes."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from annotate.integers import ID_MAX, INT64_MAX, INT64_MIN


class BoundedIntegerField(serializers.IntegerField):
    """DRF's IntegerField whose bounds never pass signed 64 bits: a bound not given is the
    64-bit limit, and one given beyond it is brought back within it."""

    def __init__(
        self, *, min_value: int = INT64_MIN, max_value: int = INT64_MAX, **kwargs: Any
    ) -> None:
        super().__init__(
            min_value=max(min_value, INT64_MIN), max_value=min(max_value, INT64_MAX), **kwargs
        )


class IdField(BoundedIntegerField):
    """An id of one of this project's models (a BigAutoField): 1 to ID_MAX."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, max_value=ID_MAX, **kwargs)
