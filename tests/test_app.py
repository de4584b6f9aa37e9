"""The real Gradio server on a free port, asked through the real gradio_client."""

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(seed_workdir: Path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--port", str(port)],
        cwd=seed_workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"app exited: {process.stdout.read()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("app did not start within 120 s")
    yield url
    process.terminate()
    process.wait(timeout=30)


def test_page_is_served_on_loopback(server: str):
    with urllib.request.urlopen(server, timeout=10) as response:
        assert response.status == 200 and b"docqa" in response.read()


def test_search_endpoint_returns_the_passages(server: str):
    from gradio_client import Client

    client = Client(server, verbose=False)
    markdown = client.predict("What are the Liancourt Rocks called in Korean?", api_name="/search")
    assert markdown.startswith("**[1] Japan–South Korea relations › Disputes › Liancourt Rocks**")
    assert "Dokdo" in markdown
    assert "question is empty" in client.predict("   ", api_name="/search")
