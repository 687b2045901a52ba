"""Copies one tag (manifest, index children, blobs) from a source registry to a target one."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests

from .client import HTTPStatusError, SyncClient

CHUNK = 8 * 1024 * 1024  # bounded memory per blob in flight: parallelism x 8 MiB
INDEX_TYPES = {"application/vnd.docker.distribution.manifest.list.v2+json",
               "application/vnd.oci.image.index.v1+json"}


class Cancelled(Exception):
    pass


class CorruptTarget(Exception):
    """The target still serves bytes that do not hash to the digest after a repair: the
    registry keeps a blob's data once it has it (distribution 2.8 skips writing content it
    already stores), so the bad data has to be removed on the registry's own storage."""


# Blobs being streamed right now, per shared known_blobs map: parallel copy_tag calls sharing
# one map (one mirror) wait for the upload in flight and then mount or skip, instead of
# sending the same bytes twice.
_INFLIGHT_LOCK = threading.Lock()
_INFLIGHT: dict[tuple[int, str], threading.Event] = {}
INFLIGHT_WAIT_S = 600.0


class DigestMismatch(Exception):
    """What we streamed does not hash to the digest: retried, never finished."""


@dataclasses.dataclass
class CopyResult:
    repository: str
    tag: str
    digest: str = ""
    up_to_date: bool = False
    blobs_total: int = 0
    blobs_done: int = 0
    blobs_skipped: int = 0
    blobs_mounted: int = 0
    bytes_total: int = 0
    bytes_sent: int = 0


class _Progress:
    """Counters shared by the blob threads; every change is reported under one lock."""

    def __init__(self, result: CopyResult, callback):
        self.result, self.callback, self.lock = result, callback, threading.Lock()

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self.result, name, getattr(self.result, name) + n)
            if self.callback:
                self.callback(dataclasses.asdict(self.result))


def _retrying(fn, retries: int, cancelled, base_s: float = 0.2):
    for attempt in range(retries + 1):
        _check_cancel(cancelled)
        try:
            return fn()
        except (requests.ConnectionError, requests.Timeout, DigestMismatch) as error:
            last = error
        except HTTPStatusError as error:
            # 4xx is final, except an upload the registry forgot (restart): that is the
            # "blob upload unknown" a restarted registry answers.
            if error.status_code < 500 and not (error.status_code == 404 and "BLOB_UPLOAD_UNKNOWN" in error.body):
                raise
            last = error
        if attempt < retries:
            time.sleep(min(base_s * 2 ** attempt, 5.0))  # backoff between attempts, not a wait
    raise last


def _check_cancel(cancelled) -> None:
    if cancelled and cancelled():
        raise Cancelled()


def copy_tag(source: SyncClient, target: SyncClient, repository: str, tag: str, *,
             progress: Callable[[dict], None] | None = None, cancelled: Callable[[], bool] | None = None,
             parallelism: int = 4, retries: int = 3, verify_existing: bool = False,
             known_blobs: dict[str, str] | None = None, target_repository: str | None = None) -> CopyResult:
    target_repository = target_repository or repository
    result = CopyResult(repository, tag)
    known = known_blobs if known_blobs is not None else {}
    source_digest = _retrying(lambda: source.head_manifest(repository, tag), retries, cancelled)
    if source_digest is None:
        raise HTTPStatusError(f"{repository}:{tag} does not exist on the source", 404)
    result.digest = source_digest
    if not verify_existing and _retrying(lambda: target.head_manifest(target_repository, tag),
                                         retries, cancelled) == source_digest:
        result.up_to_date = True
        return result
    state = _Progress(result, progress)
    copier = _Copier(source, target, repository, target_repository, state, cancelled, retries,
                     verify_existing, known)
    with ThreadPoolExecutor(parallelism) as pool:
        copier.pool = pool
        copier.copy_manifest(source_digest, tag)
    return result


@dataclasses.dataclass
class _Copier:
    source: SyncClient
    target: SyncClient
    repo: str
    target_repo: str
    state: _Progress
    cancelled: Callable[[], bool] | None
    retries: int
    verify: bool
    known: dict
    pool: ThreadPoolExecutor | None = None

    def copy_manifest(self, reference: str, tag: str | None) -> None:
        got = _retrying(lambda: self.source.get_manifest(self.repo, reference), self.retries, self.cancelled)
        if got is None:
            raise HTTPStatusError(f"{self.repo}@{reference} vanished from the source", 404)
        digest, media_type, body = got
        doc = json.loads(body)
        media_type = media_type or doc.get("mediaType", "")
        if media_type in INDEX_TYPES or "manifests" in doc:
            for child in doc.get("manifests", []):  # children first: the index must never dangle
                self.copy_manifest(child["digest"], None)
        else:
            blobs = [doc["config"], *doc.get("layers", [])]
            unique = {b["digest"]: int(b.get("size", 0)) for b in blobs}
            self.state.add(blobs_total=len(unique))
            futures = [self.pool.submit(self.copy_blob, d, size) for d, size in unique.items()]
            for f in futures:
                f.result()  # re-raises the first blob failure
            # Confirm on the target itself: a mirror never serves a manifest with a missing blob.
            for d in unique:
                if _retrying(lambda d=d: self.target.head_blob(self.target_repo, d), self.retries,
                             self.cancelled) is None:
                    raise HTTPStatusError(f"{d} missing on the target after copying", 404)
        _check_cancel(self.cancelled)
        _retrying(lambda: self.target.put_manifest(self.target_repo, tag or digest, media_type, body),
                  self.retries, self.cancelled)

    def copy_blob(self, digest: str, size: int) -> None:
        _check_cancel(self.cancelled)
        repaired = False
        present = _retrying(lambda: self.target.head_blob(self.target_repo, digest), self.retries, self.cancelled)
        if present is not None:
            if not self.verify or self._target_blob_ok(digest):
                self.known.setdefault(digest, self.target_repo)
                self.state.add(blobs_skipped=1, blobs_done=1)
                return
            repaired = True  # deleted from this repository: send it again, never mount it
        key = (id(self.known), digest)
        for _ in range(3):  # bounded: each round either owns the upload or waits for one
            with _INFLIGHT_LOCK:
                event = _INFLIGHT.get(key)
                if event is None:
                    _INFLIGHT[key] = threading.Event()
                    break
            self._wait(event)
            if not repaired and self._skip_or_mount(digest):
                return
        else:
            raise RuntimeError(f"{digest}: could not claim the upload")
        try:
            if not repaired and self._skip_or_mount(digest):
                return
            self.state.add(bytes_total=size)
            _retrying(lambda: self._stream(digest), self.retries, self.cancelled)
            if repaired and not self._target_blob_ok(digest, delete=False):
                raise CorruptTarget(f"{digest} in {self.target_repo}: the target still serves bad "
                                    f"bytes after the repair (remove the bad data from its storage)")
            self.known[digest] = self.target_repo
            self.state.add(blobs_done=1)
        finally:
            with _INFLIGHT_LOCK:
                _INFLIGHT.pop(key).set()

    def _wait(self, event: threading.Event) -> None:
        deadline = time.monotonic() + INFLIGHT_WAIT_S
        while not event.wait(0.1):
            _check_cancel(self.cancelled)
            if time.monotonic() > deadline:
                raise TimeoutError("another copy's upload did not finish in time")

    def _skip_or_mount(self, digest: str) -> bool:
        """True when the blob is now on the target repository (present, or mounted)."""
        origin = self.known.get(digest)
        if not origin:
            return False
        if origin == self.target_repo:
            if _retrying(lambda: self.target.head_blob(self.target_repo, digest),
                         self.retries, self.cancelled) is not None:
                self.state.add(blobs_skipped=1, blobs_done=1)
                return True
            return False
        location = _retrying(lambda: self.target.mount_blob(self.target_repo, digest, origin),
                             self.retries, self.cancelled)
        if location is None:
            self.state.add(blobs_mounted=1, blobs_done=1)
            return True
        return False

    def _target_blob_ok(self, digest: str, delete: bool = True) -> bool:
        sha = hashlib.sha256()
        try:
            for chunk in self.target.get_blob(self.target_repo, digest, CHUNK):
                sha.update(chunk)
        except (requests.exceptions.ChunkedEncodingError, HTTPStatusError):
            # HEAD said present, the bytes do not come: as bad as wrong bytes (a blob link
            # whose data is gone serves a HEAD and breaks off the GET).
            sha = None
        if sha is not None and "sha256:" + sha.hexdigest() == digest:
            return True
        if not delete:
            return False
        # The registry would keep serving the bad bytes; delete so the upload replaces them.
        self.target.delete_blob(self.target_repo, digest)
        return False

    def _stream(self, digest: str) -> None:
        location = self.target.start_upload(self.target_repo)
        sha, offset = hashlib.sha256(), 0
        try:
            for chunk in self.source.get_blob(self.repo, digest, CHUNK):
                _check_cancel(self.cancelled)
                sha.update(chunk)
                location = self.target.patch_chunk(self.target_repo, location, chunk, offset)
                offset += len(chunk)
                self.state.add(bytes_sent=len(chunk))
        except BaseException:
            self.state.add(bytes_sent=-offset)  # a failed attempt's bytes are sent again
            raise
        if "sha256:" + sha.hexdigest() != digest:
            self.state.add(bytes_sent=-offset)
            raise DigestMismatch(f"{digest}: source sent {offset} bytes hashing to sha256:{sha.hexdigest()}")
        self.target.finish_upload(self.target_repo, location, digest)


def delete_tag(target: SyncClient, repository: str, tag: str) -> bool:
    """Deletes the manifest the tag points at; False when it was already gone."""
    digest = target.head_manifest(repository, tag)
    if digest is None:
        return False
    return target.delete_manifest(repository, digest)
