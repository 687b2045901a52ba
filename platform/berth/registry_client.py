"""The boundary to a registry's HTTP API v2, authenticated with tokens Berth signs itself."""
from __future__ import annotations

from collections.abc import Callable

import requests

from berth.errors import BerthError
from berth.registry_auth import Grant

MANIFEST_ACCEPT = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])

# (access) -> bearer token; Berth signs for itself with the registry's trusted key.
TokenSource = Callable[[list[Grant]], str]


class RegistryError(BerthError):
    status = 502


class RegistryClient:
    def __init__(self, base_url: str, token_source: TokenSource, timeout_s: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.token_source = token_source
        self.timeout_s = timeout_s
        self.http = requests.Session()

    def _request(self, method: str, path: str, access: list[Grant], **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token_source(access)}", **kwargs.pop("headers", {})}
        try:
            return self.http.request(method, self.base_url + path, headers=headers,
                                     timeout=self.timeout_s, **kwargs)
        except requests.RequestException as error:
            raise RegistryError(f"registry {self.base_url} did not answer: {error}") from error

    @staticmethod
    def _repo(name: str, *actions: str) -> list[Grant]:
        return [Grant("repository", None, name, frozenset(actions))]

    def manifest(self, repository: str, reference: str) -> tuple[str, dict] | None:
        """(digest, manifest) or None when the tag or digest does not exist."""
        response = self._request("GET", f"/v2/{repository}/manifests/{reference}",
                                 self._repo(repository, "pull"), headers={"Accept": MANIFEST_ACCEPT})
        if response.status_code == 404:
            return None
        self._check(response, f"reading {repository}:{reference}")
        return response.headers.get("Docker-Content-Digest", ""), response.json()

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """False when it was already gone: deleting twice is fine."""
        response = self._request("DELETE", f"/v2/{repository}/manifests/{digest}",
                                 self._repo(repository, "delete"))
        if response.status_code == 404:
            return False
        self._check(response, f"deleting {repository}@{digest}")
        return True

    def tags(self, repository: str) -> list[str]:
        response = self._request("GET", f"/v2/{repository}/tags/list", self._repo(repository, "pull"))
        if response.status_code == 404:
            return []
        self._check(response, f"listing tags of {repository}")
        return response.json().get("tags") or []

    @staticmethod
    def _check(response: requests.Response, what: str) -> None:
        if response.status_code >= 400:
            raise RegistryError(f"registry refused {what}: HTTP {response.status_code} "
                                f"{response.text[:200]}")


def image_size(manifest: dict) -> int | None:
    """Compressed size: config plus layers, as a single-platform manifest lists them."""
    if "layers" not in manifest:
        return None  # an index: the size depends on the platform
    return int(manifest.get("config", {}).get("size", 0)) + sum(
        int(layer.get("size", 0)) for layer in manifest["layers"])
