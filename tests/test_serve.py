"""The search service end to end on loopback: a real uvicorn server in a thread, real HTTP
requests, its answers equal to the library's; oversized, empty and non-image uploads, missing
fields and bad k answered with 4xx and the service still up; the web page in headless Chromium."""

import http.client
import json
import shutil
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from siamese.data.images import load_image
from siamese.gallery.build import build_index
from siamese.gallery.nearest import Searcher
from siamese.gallery.store import GalleryIndex
from siamese.inference import Model, load_model
from tests.gallery_fakes import write_gallery, write_model

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
MAX_BYTES = 64 * 1024


@dataclass
class Service:
    url: str
    files: list[Path]
    index: GalleryIndex
    model: Model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from siamese.gallery.app import create_app

    folder = tmp_path_factory.mktemp("serve")
    model = load_model(write_model(folder / "model"))
    files = write_gallery(folder / "gallery")
    index = build_index(model, folder / "gallery")
    app = create_app(index, model, Searcher(index), MAX_BYTES)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    yield Service(f"http://127.0.0.1:{port}", files, index, model)
    server.should_exit = True
    thread.join(timeout=30)


def multipart(fields: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, (filename, data) in fields.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), boundary


def post(url: str, fields: dict[str, tuple[str, bytes]]) -> tuple[int, dict]:
    body, boundary = multipart(fields)
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_search_answers_as_the_library_does(service):
    query = service.files[5]
    status, body = post(f"{service.url}/search?k=4", {"file": (query.name, query.read_bytes())})
    assert status == 200 and body["k"] == 4 and body["search"] == "exact"
    embedding = service.model.embed(load_image(query, 3, 16).unsqueeze(0))
    expected = Searcher(service.index).matches([query.name], embedding, 4, service.model.threshold)
    assert [r["file"] for r in body["results"]] == [m.file for m in expected]
    assert [r["distance"] for r in body["results"]] == pytest.approx([m.distance for m in expected])
    assert [r["same"] for r in body["results"]] == [m.same for m in expected]
    first = body["results"][0]
    assert first["file"] == query.relative_to(service.index.root).as_posix()
    assert get(service.url + first["url"]) == (200, query.read_bytes())


def test_verify_and_embed(service):
    a, b = service.files[0], service.files[-1]
    status, same = post(
        f"{service.url}/verify", {"a": ("a.png", a.read_bytes()), "b": ("b.png", a.read_bytes())}
    )
    assert status == 200 and same["distance"] < 1e-3 and same["same"] is True
    status, other = post(
        f"{service.url}/verify", {"a": ("a.png", a.read_bytes()), "b": ("b.png", b.read_bytes())}
    )
    ea, eb = service.model.embed(torch.stack([load_image(p, 3, 16) for p in (a, b)]))
    assert other["distance"] == pytest.approx(
        float(service.model.distance_between(ea, eb)), abs=1e-5
    )
    assert other["same"] == (other["distance"] < service.model.threshold)
    status, embedded = post(f"{service.url}/embed", {"file": ("a.png", a.read_bytes())})
    assert status == 200 and embedded["dim"] == 8
    assert embedded["embedding"] == pytest.approx(ea.tolist(), abs=1e-5)


def test_bad_requests_get_4xx_and_the_service_stays_up(service):
    image = service.files[0].read_bytes()
    cases = [
        ("/search", {"file": ("big.png", image + b"\0" * MAX_BYTES)}, 413),
        ("/search", {"file": ("notes.txt", b"this is no image")}, 415),
        ("/search", {"file": ("empty.png", b"")}, 415),
        ("/verify", {"a": ("a.png", image), "b": ("b.txt", b"text")}, 415),
        ("/search", {"image": ("a.png", image)}, 422),  # the field is `file`
        ("/search?k=0", {"file": ("a.png", image)}, 422),
        ("/search?k=two", {"file": ("a.png", image)}, 422),
        ("/embed", {}, 422),
    ]
    for route, fields, expected in cases:
        status, body = post(service.url + route, fields)
        assert status == expected, (route, fields.keys(), body)
        assert "detail" in body
    status, body = post(f"{service.url}/search", {"file": ("notes.txt", b"no image")})
    assert "notes.txt is not an image this service can read" in body["detail"]
    status, body = post(f"{service.url}/search", {"file": ("big.png", b"\0" * MAX_BYTES)})
    assert f"over this service's limit of {MAX_BYTES} bytes" in body["detail"]
    assert get(f"{service.url}/gallery/999")[0] == 404
    assert get(f"{service.url}/gallery/-1")[0] == 404
    status, health = get(f"{service.url}/health")
    assert status == 200 and json.loads(health)["images"] == len(service.files)


def test_a_body_streamed_without_its_length_is_limited_too(service):
    body, boundary = multipart({"file": ("big.png", b"\0" * (2 * MAX_BYTES))})
    host, port = service.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    chunks = (body[i : i + 8192] for i in range(0, len(body), 8192))
    connection.request("POST", "/search", body=chunks, headers=headers, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413 and "detail" in json.loads(response.read())
    connection.close()


def test_health_and_page(service):
    status, health = get(f"{service.url}/health")
    health = json.loads(health)
    assert status == 200 and health["status"] == "ok" and health["distance"] == "euclidean"
    assert health["threshold"] == service.model.threshold and health["max_bytes"] == MAX_BYTES
    status, page = get(f"{service.url}/")
    assert status == 200 and b'<input type="file" id="file"' in page


def browser():
    """Headless Chromium through selenium, or a skip naming what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=driver)
    return webdriver.Chrome(options=options, service=service)


def test_the_page_shows_the_matches_of_a_chosen_image(service, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    query = service.files[2]
    driver = browser()
    try:
        driver.get(service.url + "/")
        WebDriverWait(driver, 30).until(
            lambda d: "gallery images" in d.find_element(By.ID, "about").text
        )
        driver.find_element(By.ID, "k").clear()
        driver.find_element(By.ID, "k").send_keys("3")
        driver.find_element(By.ID, "file").send_keys(str(query))
        matches = WebDriverWait(driver, 30).until(
            lambda d: (
                len(d.find_elements(By.CSS_SELECTOR, "figure.match")) == 3
                and d.find_elements(By.CSS_SELECTOR, "figure.match")
            )
        )
        first = matches[0].text
        assert query.relative_to(service.index.root).as_posix() in first and "same" in first
        loaded = "return [...document.images].every(i => i.complete && i.naturalWidth > 0)"
        WebDriverWait(driver, 30).until(lambda d: d.execute_script(loaded))
        driver.save_screenshot(str(tmp_path / "page.png"))
    except Exception:
        print(driver.page_source, file=sys.stderr)
        raise
    finally:
        driver.quit()


def test_the_page_shows_an_error_for_a_file_that_is_no_image(service, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    (tmp_path / "notes.txt").write_text("no image")
    driver = browser()
    try:
        driver.get(service.url + "/")
        driver.find_element(By.ID, "file").send_keys(str(tmp_path / "notes.txt"))
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "error").text)
        assert driver.find_element(By.ID, "error").text.startswith("415")
    finally:
        driver.quit()
