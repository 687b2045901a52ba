"""The registry HTTP API v2 calls the copy engine needs: manifests, blobs, uploads, mounts, tags."""
from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urljoin

import requests

from berth.registry_auth import Grant
from berth.registry_client import MANIFEST_ACCEPT, RegistryError, TokenSource


class HTTPStatusError(RegistryError):
    """A refusal with its status, so the copier can tell retryable (5xx) from final (4xx)."""

    def __init__(self, message: str, status_code: int, body: str = ""):
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class SyncClient:
    def __init__(self, base_url: str, token_source: TokenSource, timeout_s: float = 30.0,
                 pool_size: int = 16):
        self.base_url = base_url.rstrip("/")
        self.token_source = token_source
        self.timeout_s = timeout_s
        self.http = requests.Session()
        # One connection per worker thread, so parallel blob copies do not queue on the pool.
        adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)

    def _request(self, method: str, url: str, grants: list[Grant], **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token_source(grants)}", **kwargs.pop("headers", {})}
        if not url.startswith("http"):
            url = self.base_url + url
        # Connection errors propagate as requests exceptions: the copier retries them.
        return self.http.request(method, url, headers=headers, timeout=self.timeout_s, **kwargs)

    @staticmethod
    def _repo(name: str, *actions: str) -> list[Grant]:
        return [Grant("repository", None, name, frozenset(actions))]

    def _check(self, response: requests.Response, what: str, ok: tuple[int, ...]) -> None:
        if response.status_code not in ok:
            raise HTTPStatusError(f"{self.base_url} refused {what}: HTTP {response.status_code} "
                                  f"{response.text[:200]}", response.status_code, response.text)

    # manifests
    def head_manifest(self, repository: str, reference: str) -> str | None:
        """The digest, or None when the tag or digest does not exist."""
        r = self._request("HEAD", f"/v2/{repository}/manifests/{reference}",
                          self._repo(repository, "pull"), headers={"Accept": MANIFEST_ACCEPT})
        if r.status_code == 404:
            return None
        self._check(r, f"HEAD {repository}:{reference}", (200,))
        return r.headers.get("Docker-Content-Digest")

    def get_manifest(self, repository: str, reference: str) -> tuple[str, str, bytes] | None:
        """(digest, media type, raw bytes): the bytes are pushed unchanged so the digest holds."""
        r = self._request("GET", f"/v2/{repository}/manifests/{reference}",
                          self._repo(repository, "pull"), headers={"Accept": MANIFEST_ACCEPT})
        if r.status_code == 404:
            return None
        self._check(r, f"GET manifest {repository}:{reference}", (200,))
        return r.headers.get("Docker-Content-Digest", ""), r.headers.get("Content-Type", ""), r.content

    def put_manifest(self, repository: str, reference: str, media_type: str, body: bytes) -> str:
        r = self._request("PUT", f"/v2/{repository}/manifests/{reference}",
                          self._repo(repository, "pull", "push"),
                          headers={"Content-Type": media_type}, data=body)
        self._check(r, f"PUT manifest {repository}:{reference}", (201,))
        return r.headers.get("Docker-Content-Digest", "")

    def delete_manifest(self, repository: str, digest: str) -> bool:
        r = self._request("DELETE", f"/v2/{repository}/manifests/{digest}",
                          self._repo(repository, "delete"))
        if r.status_code == 404:
            return False
        self._check(r, f"DELETE manifest {repository}@{digest}", (202,))
        return True

    # blobs
    def head_blob(self, repository: str, digest: str) -> int | None:
        """The size, or None when absent."""
        r = self._request("HEAD", f"/v2/{repository}/blobs/{digest}", self._repo(repository, "pull"))
        if r.status_code == 404:
            return None
        self._check(r, f"HEAD blob {repository}@{digest}", (200,))
        return int(r.headers.get("Content-Length", 0))

    def get_blob(self, repository: str, digest: str, chunk_size: int) -> Iterator[bytes]:
        """Streams the blob; never holds more than one chunk."""
        r = self._request("GET", f"/v2/{repository}/blobs/{digest}", self._repo(repository, "pull"),
                          stream=True)
        try:
            self._check(r, f"GET blob {repository}@{digest}", (200,))
            yield from r.iter_content(chunk_size)
        finally:
            r.close()

    def delete_blob(self, repository: str, digest: str) -> bool:
        r = self._request("DELETE", f"/v2/{repository}/blobs/{digest}", self._repo(repository, "delete"))
        if r.status_code == 404:
            return False
        self._check(r, f"DELETE blob {repository}@{digest}", (202,))
        return True

    def start_upload(self, repository: str) -> str:
        r = self._request("POST", f"/v2/{repository}/blobs/uploads/", self._repo(repository, "pull", "push"))
        self._check(r, f"starting an upload to {repository}", (202,))
        return self._location(r)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> str | None:
        """None when mounted (201); else the upload location the registry opened instead (202)."""
        grants = self._repo(repository, "pull", "push") + self._repo(from_repository, "pull")
        r = self._request("POST", f"/v2/{repository}/blobs/uploads/", grants,
                          params={"mount": digest, "from": from_repository})
        self._check(r, f"mounting {digest} from {from_repository} into {repository}", (201, 202))
        return None if r.status_code == 201 else self._location(r)

    def patch_chunk(self, repository: str, location: str, chunk: bytes, offset: int) -> str:
        r = self._request("PATCH", location, self._repo(repository, "pull", "push"), data=chunk,
                          headers={"Content-Type": "application/octet-stream",
                                   "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
        self._check(r, f"sending a chunk to {repository}", (202,))
        return self._location(r)

    def finish_upload(self, repository: str, location: str, digest: str) -> None:
        sep = "&" if "?" in location else "?"
        r = self._request("PUT", f"{location}{sep}digest={digest}", self._repo(repository, "pull", "push"))
        self._check(r, f"finishing the upload of {digest} to {repository}", (201,))

    # listing
    def tags(self, repository: str, page_size: int = 1000, max_pages: int = 1000) -> list[str]:
        url, found = f"/v2/{repository}/tags/list?n={page_size}", []
        for _ in range(max_pages):  # bounded: a registry that loops its Link header cannot hang us
            r = self._request("GET", url, self._repo(repository, "pull"))
            if r.status_code == 404:
                return found
            self._check(r, f"listing tags of {repository}", (200,))
            found += r.json().get("tags") or []
            url = _next_link(r)
            if not url:
                return found
        raise RegistryError(f"tags of {repository} did not end after {max_pages} pages")

    def _location(self, r: requests.Response) -> str:
        return urljoin(self.base_url + "/", r.headers["Location"])


def _next_link(r: requests.Response) -> str | None:
    # Link: </v2/x/tags/list?last=a&n=2>; rel="next"
    link = r.headers.get("Link")
    if not link or 'rel="next"' not in link:
        return None
    return link.split(";")[0].strip().strip("<>")
