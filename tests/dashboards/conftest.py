"""A workspace with one search (filled through the Store API) and a test client of the web app over it."""
from __future__ import annotations

import pytest

from tests.nas.test_service import fill_workspace, local_client
from webapp.app import create_web_app


@pytest.fixture
def filled(tmp_path):
    return fill_workspace(tmp_path / "ws")


@pytest.fixture
def client(filled):
    with local_client(create_web_app(filled[0])) as test_client:
        yield test_client
