"""Downloads against a local HTTP server on 127.0.0.1: resume after an interruption, a
partial file from an earlier run, checksums, mirrors, archives, offline mode, the CLI."""

from __future__ import annotations

import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from brainrank.cli import main
from brainrank.core.errors import DataUnavailableError
from brainrank.data.fetch import extract, fetch, fetch_all
from brainrank.data.files import RemoteFile, check_file


class Server:
    """Serves ``files`` (URL path -> bytes) with HTTP Range support.

    ``truncate``: paths whose next response announces the full length but stops halfway
    (then closes the connection); ``ignore_range``: paths answered with 200 and the whole
    file even when a Range is asked.
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.ignore_range: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                wanted = self.headers.get("Range")
                server.requests.append((path, wanted))
                body = server.files.get(path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                if wanted and path not in server.ignore_range:
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if path in server.truncate:
                    server.truncate.discard(path)
                    self.wfile.write(part[: len(part) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(part)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    monkeypatch.delenv("BRAINRANK_OFFLINE", raising=False)
    instance = Server()
    yield instance
    instance.close()


PAYLOAD = bytes(range(256)) * 4000  # 1 MB


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*.part"))


def test_plain_download_with_checksum(server, tmp_path):
    server.files["/data/a.bin"] = PAYLOAD
    file = RemoteFile(
        "sub/a.bin", (f"{server.url}/data/a.bin",), checksum=("sha256", sha256(PAYLOAD))
    )
    path = fetch(file, tmp_path)
    assert path == tmp_path / "sub/a.bin" and path.read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == []
    assert check_file(file, tmp_path, verify=True).ok
    fetch(file, tmp_path)  # present and intact: no second request
    assert len(server.requests) == 1


def test_an_interrupted_transfer_resumes_with_a_range_request(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    server.truncate.add("/a.bin")
    file = RemoteFile("a.bin", (f"{server.url}/a.bin",), checksum=("sha256", sha256(PAYLOAD)))
    assert fetch(file, tmp_path).read_bytes() == PAYLOAD
    assert server.requests[0] == ("/a.bin", None)
    assert server.requests[1] == ("/a.bin", f"bytes={len(PAYLOAD) // 2}-")
    assert leftovers(tmp_path) == []


def test_a_partial_file_from_an_earlier_run_is_continued(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:300_000])
    file = RemoteFile("a.bin", (f"{server.url}/a.bin",), size=len(PAYLOAD))
    assert fetch(file, tmp_path).read_bytes() == PAYLOAD
    assert server.requests == [("/a.bin", "bytes=300000-")]
    # a complete .part (the rename was interrupted): 416, then verified and renamed
    (tmp_path / "a.bin").unlink()
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD)
    assert fetch(file, tmp_path).read_bytes() == PAYLOAD
    # a server that ignores Range: starts over instead of appending
    server.ignore_range.add("/a.bin")
    (tmp_path / "a.bin").unlink()
    (tmp_path / "a.bin.part").write_bytes(PAYLOAD[:1000])
    assert fetch(file, tmp_path).read_bytes() == PAYLOAD


def test_checksum_mismatch_names_everything_and_leaves_nothing(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    wrong = "0" * 64
    file = RemoteFile("deep/a.bin", (f"{server.url}/a.bin",), checksum=("sha256", wrong))
    with pytest.raises(DataUnavailableError) as info:
        fetch(file, tmp_path)
    message = str(info.value)
    assert "deep/a.bin" in message and str(tmp_path / "deep") in message
    assert f"{server.url}/a.bin" in message and wrong in message and sha256(PAYLOAD) in message
    assert not (tmp_path / "deep/a.bin").exists() and leftovers(tmp_path) == []


def test_mirrors_and_errors(server, tmp_path, monkeypatch):
    server.files["/b/a.bin"] = PAYLOAD
    file = RemoteFile("a.bin", (f"{server.url}/missing/a.bin", f"{server.url}/b/a.bin"))
    assert fetch(file, tmp_path).read_bytes() == PAYLOAD
    gone = RemoteFile("c.bin", (f"{server.url}/nothing/c.bin",), note="ask the authors")
    with pytest.raises(DataUnavailableError, match=r"(?s)c\.bin.*HTTP 404.*ask the authors"):
        fetch(gone, tmp_path)
    unreachable = RemoteFile("d.bin", ("http://127.0.0.1:9/d.bin",))
    with pytest.raises(DataUnavailableError, match=r"could not download d\.bin"):
        fetch(unreachable, tmp_path, retries=0)
    monkeypatch.setenv("BRAINRANK_OFFLINE", "1")
    requests = len(server.requests)
    with pytest.raises(DataUnavailableError, match="BRAINRANK_OFFLINE"):
        fetch(RemoteFile("e.bin", (f"{server.url}/b/a.bin",)), tmp_path)
    assert len(server.requests) == requests


def test_archives_are_fetched_once_and_unpacked(server, tmp_path):
    archive_path = tmp_path / "source.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr("Release/ROIs/x.txt", "x")
        archive.writestr("Release/ROIs/y.txt", "y")
        archive.writestr("Release/other.txt", "z")
    server.files["/r.zip"] = archive_path.read_bytes()
    archive = RemoteFile("downloads/r.zip", (f"{server.url}/r.zip",))
    root = tmp_path / "root"
    wanted = [RemoteFile("ROIs/x.txt", archive=archive), RemoteFile("ROIs/y.txt", archive=archive)]
    fetch_all(wanted, root)
    assert (root / "ROIs/x.txt").read_text() == "x" and (root / "ROIs/y.txt").read_text() == "y"
    assert not (root / "other.txt").exists() and len(server.requests) == 1
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as handle:
        handle.writestr("../escape.txt", "no")
    with pytest.raises(DataUnavailableError, match="unsafe"):
        extract(evil, root)
    with pytest.raises(DataUnavailableError, match="does not contain"):
        extract(archive_path, root, ["ROIs/z.txt"])


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_download_through_a_mirror_then_check(server, tmp_path, shared_dir):
    from brainrank.plugins.datasets import kriegeskorte2008 as k92

    source = shared_dir / "data" / "kriegeskorte92"
    for name in (k92.SUPPLEMENT, k92.BRAIN, k92.MODELS):
        if not (source / name).is_file():
            pytest.skip("the 92-image files are not present")
        server.files[f"/mirror/kriegeskorte2008/{name}"] = (source / name).read_bytes()
    server.truncate.add(f"/mirror/kriegeskorte2008/{k92.SUPPLEMENT}")
    data = tmp_path / "data"
    result = invoke("data", "check", "kriegeskorte2008", "--data-dir", str(data))
    assert result.exit_code == 1 and "missing: 92_brainRDMs.mat" in result.output
    result = invoke("data", "download", "kriegeskorte2008", "--data-dir", str(data),
                    "--mirror", f"{server.url}/mirror", "--yes")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 of 3 files present" in result.output
    result = invoke("data", "check", "kriegeskorte2008", "--data-dir", str(data), "--verify")
    assert result.exit_code == 0 and "complete" in result.output
    assert k92.build(data / "kriegeskorte2008").noise_ceiling()[0] > 0.3
    # a mirror serving a different file: the checksum catches it, one clear line, no file
    (data / "kriegeskorte2008" / k92.MODELS).unlink()
    server.files[f"/mirror/kriegeskorte2008/{k92.MODELS}"] = b"x" * 333004
    result = CliRunner().invoke(main, ["data", "download", "kriegeskorte2008", "--data-dir",
                                       str(data), "--mirror", f"{server.url}/mirror", "--yes"])  # fmt: skip
    assert result.exit_code == 1 and "sha256 checksum" in result.output
    assert "Traceback" not in result.output
    assert not (data / "kriegeskorte2008" / k92.MODELS).exists() and leftovers(data) == []


def test_cli_check_overview_and_offline_download(tmp_path):
    result = invoke("data", "check", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "nsd/shared1000: incomplete" in result.output and "bold5000: incomplete" in result.output
    result = invoke(
        "data", "check", "nsd/shared1000", "--subjects", "1", "--data-dir", str(tmp_path)
    )
    assert "from https://natural-scenes-dataset.s3.amazonaws.com/<path>" in result.output
    assert "subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session01.hdf5" in result.output
    result = CliRunner().invoke(
        main, ["data", "download", "kriegeskorte2008", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 1 and "BRAINRANK_OFFLINE" in result.output
    result = CliRunner().invoke(main, ["data", "download", "simulated"])
    assert result.exit_code == 1 and "reads no files" in result.output
