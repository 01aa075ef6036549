"""Hypothesis settings every property-based test of the suite uses: repeatable in CI.

`derandomize=True` draws from a seed fixed per test, so every run (and every
CI run) tries the same examples; `max_examples` is set per test to keep the
whole fuzzing budget near a minute; no deadline (the machine is shared and
slow); no example database written into the checkout.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

__all__ = ["fuzz"]


def fuzz(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
