"""Fixtures of the I/O tests."""

import pytest
from io_samples import smooth_image


@pytest.fixture
def image():
    return smooth_image()
