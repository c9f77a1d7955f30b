"""Downloading dataset files: resumable, verified, never half-written.

:func:`fetch` downloads one :class:`~brainrank.data.files.RemoteFile` into a dataset folder:

- the bytes go to ``<name>.part`` beside the target and the file is renamed into place
  only once it is complete and its size and checksum (where known) agree, so a file with
  the final name is always whole;
- an interrupted transfer (connection dropped, fewer bytes than announced, Ctrl-C) leaves
  the ``.part`` file, and the next attempt asks the server for the rest (HTTP ``Range``);
  within one call, dropped connections are retried a few times;
- mirrors (several URLs) are tried in order;
- a checksum mismatch deletes the partial file and raises an error naming the file, the
  folder, the URL and both digests;
- ``BRAINRANK_OFFLINE=1`` forbids any download.

Only the standard library is used (``urllib``), so anything that speaks HTTP(S) works,
including a lab mirror or a local test server.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from brainrank._version import __version__
from brainrank.core.errors import DataUnavailableError
from brainrank.data.files import RemoteFile, check_file, file_digest, is_offline

log = logging.getLogger(__name__)

CHUNK = 1 << 20
USER_AGENT = f"brainrank/{__version__} (dataset download)"


class _Interrupted(Exception):
    """The server closed the connection before sending everything it announced."""


def _offline_error(file: RemoteFile, target: Path) -> DataUnavailableError:
    return DataUnavailableError(
        f"{file.path} is missing from {target.parent} and downloads are disabled "
        f"(BRAINRANK_OFFLINE=1). Fetch it from {file.source} and put it there, or unset "
        "BRAINRANK_OFFLINE."
    )


def _content_range_start(header: str | None) -> int | None:
    # "bytes 100-199/200"
    if not header or not header.startswith("bytes "):
        return None
    try:
        return int(header[6:].split("-", 1)[0])
    except ValueError:
        return None


def _transfer(
    url: str,
    part: Path,
    *,
    timeout: float,
    progress: Callable[[int, int | None], None] | None,
) -> int | None:
    """Append the rest of ``url`` to ``part``; return the total size if the server said it.

    Raises :class:`_Interrupted` when the connection ends early (the part file keeps what
    arrived), ``urllib.error.HTTPError``/``URLError``/``OSError`` otherwise.
    """
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: the part may be complete
            exc.close()
            return None
        raise
    with response:
        status = response.status
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None and length.isdigit() else None
        if status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != offset:
                raise _Interrupted(f"the server resumed at byte {start}, not {offset}")
            total = offset + length if length is not None else None
            mode = "ab"
        else:  # 200: the server sends the whole file (it ignored or did not get a Range)
            if offset:
                log.info("%s: the server does not resume; starting over", url)
            offset = 0
            total = length
            mode = "wb"
        received = 0
        with open(part, mode) as out:
            while True:
                try:
                    block = response.read(CHUNK)
                except (ConnectionError, TimeoutError, OSError) as exc:
                    raise _Interrupted(str(exc)) from exc
                except Exception as exc:  # http.client.IncompleteRead and friends
                    raise _Interrupted(f"{type(exc).__name__}: {exc}") from exc
                if not block:
                    break
                out.write(block)
                received += len(block)
                if progress is not None:
                    progress(offset + received, total)
        if length is not None and received < length:
            raise _Interrupted(f"received {received} of {length} bytes")
        return total


def fetch(
    file: RemoteFile,
    root: Path,
    *,
    urls: Sequence[str] | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
    force: bool = False,
) -> Path:
    """Download ``file`` into ``root`` (resuming a ``.part`` file) and return its path.

    A file already present with the expected size and checksum is not downloaded again
    (``force=True`` re-downloads it). ``urls`` overrides ``file.urls`` (for a mirror).
    """
    target = root / file.path
    candidates = list(urls) if urls is not None else list(file.urls)
    if target.is_file() and not force:
        status = check_file(file, root, verify=True)
        if status.ok:
            return target
        log.warning("%s is present but %s; downloading it again", target, status.problem)
    if not candidates:
        raise DataUnavailableError(
            f"{file.path} is not in {target.parent} and cannot be downloaded by brainrank: "
            f"{file.note or 'no public URL is known'}."
        )
    if is_offline():
        raise _offline_error(file, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    errors: list[str] = []
    for url in candidates:
        attempts = 0
        while True:
            try:
                total = _transfer(url, part, timeout=timeout, progress=progress)
            except _Interrupted as exc:
                attempts += 1
                if attempts > retries:
                    errors.append(f"{url}: interrupted {attempts} times ({exc})")
                    break
                log.warning("%s: transfer interrupted (%s); resuming", url, exc)
                time.sleep(min(2.0**attempts * 0.1, 5.0))
                continue
            except urllib.error.HTTPError as exc:
                errors.append(f"{url}: HTTP {exc.code} {exc.reason}")
                exc.close()
                break
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                attempts += 1
                if attempts > retries:
                    errors.append(f"{url}: {reason}")
                    break
                time.sleep(min(2.0**attempts * 0.1, 5.0))
                continue
            problem = _verify(file, part, total)
            if problem:
                part.unlink(missing_ok=True)
                errors.append(f"{url}: {problem}")
                if problem.startswith("size"):  # e.g. a truncated mirror: try the next one
                    break
                raise DataUnavailableError(
                    f"the download of {file.path} into {target.parent} from {url} is corrupt: "
                    f"{problem}. The partial file was removed; run the download again, and "
                    "if it keeps failing the remote file has changed (report it)."
                )
            os.replace(part, target)
            return target
    raise DataUnavailableError(
        f"could not download {file.path} into {target.parent}:\n  "
        + "\n  ".join(errors)
        + (f"\nNote: {file.note}." if file.note else "")
        + (
            f"\nA partial download is kept in {part} and resumes next time."
            if part.exists()
            else ""
        )
    )


def _verify(file: RemoteFile, part: Path, announced: int | None) -> str:
    size = part.stat().st_size if part.exists() else 0
    expected = file.size if file.size is not None else announced
    if expected is not None and size != expected:
        return f"size {size} bytes, expected {expected}"
    if file.checksum is not None:
        algorithm, digest = file.checksum
        actual = file_digest(part, algorithm)
        if actual.lower() != digest.lower():
            return f"{algorithm} checksum {actual}, expected {digest}"
    return ""


# --------------------------------------------------------------------------- archives


def extract(archive: Path, root: Path, members: Sequence[str] | None = None) -> list[Path]:
    """Unpack ``members`` (default: everything) of a zip archive to ``root/<member>``.

    A member not found under its exact path is looked up by suffix (archives often wrap
    everything in one extra top-level folder). Each member is written to a temporary name
    and renamed, so an interrupted extraction never leaves a truncated file under its final
    name. Member paths that would leave ``root`` are refused.
    """
    try:
        handle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataUnavailableError(
            f"{archive} is not a readable zip archive ({exc}); delete it and download it again."
        ) from exc
    out = []
    with handle:
        names = [n for n in handle.namelist() if not n.endswith("/")]
        wanted = names if members is None else list(members)
        located: dict[str, str] = {}
        missing = []
        name_set = set(names)
        for want in wanted:
            if want in name_set:
                located[want] = want
                continue
            matches = [n for n in names if n.endswith("/" + want)]
            if len(matches) == 1:
                located[want] = matches[0]
            else:
                missing.append(want)
        if missing:
            raise DataUnavailableError(
                f"{archive} does not contain {len(missing)} expected files (e.g. {missing[:3]}); "
                f"its top-level entries are {sorted({n.split('/')[0] for n in names})[:8]}."
            )
        base = root.resolve()
        for want, name in located.items():
            relative = PurePosixPath(want)
            if relative.is_absolute() or ".." in relative.parts:
                raise DataUnavailableError(f"{archive} has an unsafe member path {name!r}.")
            destination = base.joinpath(*relative.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            temporary = destination.with_name(destination.name + ".part")
            with handle.open(name) as src, open(temporary, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            os.replace(temporary, destination)
            out.append(destination)
    return out


# --------------------------------------------------------------------------- many files


def mirror_urls(file: RemoteFile, mirror: str, folder: str) -> list[str]:
    """URL of ``file`` on a mirror that copies the data folder's layout:
    ``<mirror>/<dataset folder>/<path>``."""
    return [f"{mirror.rstrip('/')}/{folder}/{file.path}"]


def fetch_all(
    files: Sequence[RemoteFile],
    root: Path,
    *,
    folder: str = "",
    mirror: str | None = None,
    report: Callable[[str], None] = log.info,
    progress_factory: Callable[[RemoteFile], Callable[[int, int | None], None] | None]
    | None = None,
    verify_present: bool = True,
) -> list[Path]:
    """Fetch every file that is missing (archives once, then unpacked).

    Files already present are kept (with ``verify_present``, their checksum is checked
    first). Returns the paths of the files now present.
    """
    done: list[Path] = []
    archives: dict[str, tuple[RemoteFile, list[RemoteFile]]] = {}
    for file in files:
        status = check_file(file, root, verify=verify_present)
        if status.ok:
            done.append(status.local)
            continue
        if file.archive is not None:
            archives.setdefault(file.archive.path, (file.archive, []))[1].append(file)
            continue
        report(f"fetching {file.path} from {(mirror or file.source)}")
        urls = mirror_urls(file, mirror, folder) if mirror else None
        progress = progress_factory(file) if progress_factory else None
        done.append(fetch(file, root, urls=urls, progress=progress))
    for archive, members in archives.values():
        path = root / archive.path
        if not check_file(archive, root, verify=verify_present).ok:
            report(f"fetching archive {archive.path} from {(mirror or archive.source)}")
            urls = mirror_urls(archive, mirror, folder) if mirror else None
            progress = progress_factory(archive) if progress_factory else None
            fetch(archive, root, urls=urls, progress=progress)
        report(f"unpacking {len(members)} files from {archive.path}")
        done.extend(extract(path, root, [m.path for m in members]))
    return done
