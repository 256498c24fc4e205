"""Test environment: no real network, a fake Hub on 127.0.0.1, a throwaway HF cache.

The HF_* variables must be set before anything imports huggingface_hub (it reads them at import), so this
runs at conftest import time: a free port is chosen now and the fake Hub is started on it when first used.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_PORT = _free_port()
_HOME = tempfile.mkdtemp(prefix="wavehub-tests-hf-")
atexit.register(shutil.rmtree, _HOME, True)
for k in ("HF_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HUGGING_FACE_HUB_TOKEN"):
    os.environ.pop(k, None)
os.environ.update(
    {
        "HF_ENDPOINT": f"http://127.0.0.1:{_PORT}",
        "HF_HOME": _HOME,
        "HF_HUB_CACHE": os.path.join(_HOME, "hub"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_ETAG_TIMEOUT": "2",
        "HF_HUB_DOWNLOAD_TIMEOUT": "5",
        "WAVEHUB_TEST_ENDPOINT": f"http://127.0.0.1:{_PORT}",
    }
)


@pytest.fixture(scope="session")
def fakehub():
    from hubserver import FakeHub

    hub = FakeHub(port=_PORT).start()
    yield hub
    hub.stop()


@pytest.fixture
def hub(fakehub, tmp_path, monkeypatch):
    """The fake Hub, reset, with a fresh empty HF cache for this test (``hub.cache_dir``)."""
    from huggingface_hub import constants

    fakehub.reset()
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HUGGINGFACE_HUB_CACHE", str(cache), raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    fakehub.cache_dir = cache
    yield fakehub
    fakehub.reset()
