"""The image build is the longest test (minutes): it starts first, so the other
workers run the rest of the suite beside it instead of after it."""

from __future__ import annotations

import pytest

LONGEST = "test_image_builds_and_both_services_run_from_it"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.name != LONGEST)
