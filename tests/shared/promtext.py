"""Reading the Prometheus text of ``/metrics`` in tests, with prometheus_client's parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["sample", "samples"]


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample called `name` (the full sample name, e.g. ``x_total``, ``x_count``)."""
    found = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                found.append((dict(s.labels), float(s.value)))
    return found


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the one sample `name` whose labels include `labels`; None when absent."""
    matching = [v for got, v in samples(text, name) if labels.items() <= got.items()]
    assert len(matching) <= 1, f"several {name} samples match {labels}"
    return matching[0] if matching else None
