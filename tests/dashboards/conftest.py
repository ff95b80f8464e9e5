"""A workspace with one search (filled through the Store API) and a test client of the web app over it."""
from __future__ import annotations

import warnings

import pytest

from tests.nas.test_service import fill_workspace
from webapp.app import create_web_app

with warnings.catch_warnings():  # starlette 1.x asks for httpx2, which is not installed; httpx works
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


@pytest.fixture
def filled(tmp_path):
    return fill_workspace(tmp_path / "ws")


@pytest.fixture
def client(filled):
    with TestClient(create_web_app(filled[0])) as test_client:
        yield test_client
