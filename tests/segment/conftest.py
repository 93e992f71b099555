"""Fixtures of the segment tests (the fields themselves live in ``segment_fields``)."""

from __future__ import annotations

import pytest
from segment_fields import field


@pytest.fixture
def blood_field():
    return field()
