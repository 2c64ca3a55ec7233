"""Amazon ECR: resolve tags to digests and tell which platforms an image provides."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from bot.errors import AwsError, AwsNotFoundError
from bot.images import (
    MANIFEST_MEDIA_TYPES,
    Platform,
    config_digest,
    platform_from_config,
    platforms_from_manifest,
)
from integrations.aws import aws_call

logger = logging.getLogger(__name__)

MAX_BLOB_BYTES = 1_000_000  # an image config is a few KB; anything near this is not one
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=10)
BATCH_GET_IMAGE_MAX_IDS = 100

# Failure codes meaning "no such image here"; an invalid tag or digest cannot exist either.
_ABSENT_FAILURES = {"ImageNotFound", "InvalidImageTag", "InvalidImageDigest"}

ConfigFetcher = Callable[[str], Awaitable[str]]


class BlobFetchError(Exception):
    """A config blob could not be downloaded; a config fetcher raises only this."""


class ImageInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    repository: str
    tag: str | None
    digest: str
    media_type: str
    platforms: list[Platform] | None
    pushed_at: datetime | None
    registry_uri: str

    @property
    def reference(self) -> str:
        """What to pull: pinned to the digest, so a moved tag cannot change what is deployed."""
        return f"{self.registry_uri}@{self.digest}"


class _Manifest(BaseModel):
    """What BatchGetImage and DescribeImages say about one image, before platforms are known."""

    digest: str
    media_type: str
    manifest: str
    tags: list[str]
    pushed_at: datetime | None


class Ecr:
    """Async facade over a boto3 ECR client (injected, so tests point it at moto).

    `config_fetcher` downloads a layer URL from GetDownloadUrlForLayer; without one, a
    single-platform image's architecture stays unknown.
    """

    def __init__(self, client: Any, *, config_fetcher: ConfigFetcher | None = None) -> None:
        self._client = client
        self._fetch = config_fetcher
        self._uris: dict[str, str] = {}

    @property
    def region(self) -> str:
        return str(self._client.meta.region_name)

    async def find_image(self, repository: str, tags: Sequence[str]) -> ImageInfo | None:
        """The first of `tags` (in the order given) that exists, resolved to its digest."""
        if isinstance(tags, str):
            raise TypeError("tags must be a sequence of tags, not one string")
        for tag in tags:
            if not tag:  # ECR rejects an empty tag outright; it cannot name an image either
                continue
            found = await self._lookup(repository, {"imageTag": tag})
            if found is not None:
                return await self._info(repository, found, tag)
        return None

    async def image_by_digest(self, repository: str, digest: str) -> ImageInfo | None:
        found = await self._lookup(repository, {"imageDigest": digest})
        if found is None:
            return None
        return await self._info(repository, found, found.tags[0] if found.tags else None)

    async def recent_images(self, repository: str, limit: int = 10) -> list[ImageInfo]:
        """Tagged images, newest pushed first (for a rollback picker)."""
        found = await self._recent(repository, limit)
        await self._repository_uri(repository)  # once, before the lookups run side by side
        return list(
            await asyncio.gather(
                *(self._info(repository, m, m.tags[0] if m.tags else None) for m in found)
            )
        )

    async def _info(self, repository: str, found: _Manifest, tag: str | None) -> ImageInfo:
        platforms = platforms_from_manifest(found.media_type, found.manifest)
        if platforms is None:
            platforms = await self._config_platforms(repository, found)
        return ImageInfo(
            repository=repository,
            tag=tag,
            digest=found.digest,
            media_type=found.media_type,
            platforms=platforms,
            pushed_at=found.pushed_at,
            registry_uri=await self._repository_uri(repository),
        )

    async def _config_platforms(self, repository: str, found: _Manifest) -> list[Platform] | None:
        """A single-platform image's platform, from its config blob; None when unreadable."""
        digest = config_digest(found.media_type, found.manifest)
        if self._fetch is None or digest is None:
            return None
        # Best effort: the image itself was found, only its architecture stays unknown.
        try:
            url = await self._download_url(repository, digest)
            body = await self._fetch(url)
        except (AwsError, BlobFetchError) as exc:
            logger.debug(
                "Architecture of %s@%s unknown: config blob %s unreadable: %s",
                repository,
                found.digest,
                digest,
                exc,
            )
            return None
        platform = platform_from_config(body)
        return [platform] if platform is not None else None

    async def _repository_uri(self, repository: str) -> str:
        if repository not in self._uris:
            self._uris[repository] = await self._describe_repository_uri(repository)
        return self._uris[repository]

    @aws_call("read an image from ECR")
    def _lookup(self, repository: str, image_id: dict[str, str]) -> _Manifest | None:
        with self._repository_errors(repository):
            response = self._client.batch_get_image(
                repositoryName=repository,
                imageIds=[image_id],
                acceptedMediaTypes=list(MANIFEST_MEDIA_TYPES),
            )
        images = response.get("images", [])
        if not images:
            self._raise_unless_absent(repository, response.get("failures", []))
            return None
        image = images[0]
        digest = str(image["imageId"]["imageDigest"])
        tags: list[str] = []
        pushed_at: datetime | None = None
        try:
            with self._repository_errors(repository):
                details = self._client.describe_images(
                    repositoryName=repository, imageIds=[{"imageDigest": digest}]
                )["imageDetails"]
        except ClientError as exc:
            # Deleted between the two calls: what BatchGetImage returned still stands.
            if _error_code(exc) != "ImageNotFoundException":
                raise
            details = []
        if details:
            tags = [str(t) for t in details[0].get("imageTags", [])]
            pushed_at = details[0].get("imagePushedAt")
        return _Manifest(
            digest=digest,
            media_type=_media_type(image),
            manifest=str(image["imageManifest"]),
            tags=tags,
            pushed_at=pushed_at,
        )

    @aws_call("list images in ECR")
    def _recent(self, repository: str, limit: int) -> list[_Manifest]:
        details: list[dict[str, Any]] = []
        with self._repository_errors(repository):
            # Tagged only: a multi-platform push also stores each platform's manifest untagged,
            # and those are not something to roll back to.
            pages = self._client.get_paginator("describe_images").paginate(
                repositoryName=repository, filter={"tagStatus": "TAGGED"}
            )
            for page in pages:
                details.extend(d for d in page.get("imageDetails", []) if d.get("imageTags"))
        # Reversed first so that, for equal push times (ECR keeps seconds), the later-listed
        # image comes first: the sort is stable, also with reverse=True.
        details.reverse()
        details.sort(
            key=lambda d: d.get("imagePushedAt") or datetime.min.replace(tzinfo=UTC), reverse=True
        )
        newest = details[:limit]
        digests = [str(d["imageDigest"]) for d in newest]
        manifests: dict[str, dict[str, Any]] = {}
        for start in range(0, len(digests), BATCH_GET_IMAGE_MAX_IDS):
            with self._repository_errors(repository):
                response = self._client.batch_get_image(
                    repositoryName=repository,
                    imageIds=[
                        {"imageDigest": d} for d in digests[start : start + BATCH_GET_IMAGE_MAX_IDS]
                    ],
                    acceptedMediaTypes=list(MANIFEST_MEDIA_TYPES),
                )
            for image in response.get("images", []):
                manifests.setdefault(str(image["imageId"]["imageDigest"]), image)
        # An image deleted since DescribeImages is simply left out.
        return [
            _Manifest(
                digest=str(d["imageDigest"]),
                media_type=_media_type(manifests[str(d["imageDigest"])]),
                manifest=str(manifests[str(d["imageDigest"])]["imageManifest"]),
                tags=[str(t) for t in d.get("imageTags", [])],
                pushed_at=d.get("imagePushedAt"),
            )
            for d in newest
            if str(d["imageDigest"]) in manifests
        ]

    @aws_call("read an ECR repository")
    def _describe_repository_uri(self, repository: str) -> str:
        with self._repository_errors(repository):
            response = self._client.describe_repositories(repositoryNames=[repository])
        return str(response["repositories"][0]["repositoryUri"])

    @aws_call("get a download URL for an image's config from ECR")
    def _download_url(self, repository: str, digest: str) -> str:
        with self._repository_errors(repository):
            response = self._client.get_download_url_for_layer(
                repositoryName=repository, layerDigest=digest
            )
        return str(response["downloadUrl"])

    @contextmanager
    def _repository_errors(self, repository: str) -> Iterator[None]:
        # aws_call's generic "does not exist in AWS" would not say which repository is missing.
        try:
            yield
        except ClientError as exc:
            if _error_code(exc) == "RepositoryNotFoundException":
                raise AwsNotFoundError(
                    f"ECR repository `{repository}` does not exist in {self.region}."
                ) from exc
            raise

    def _raise_unless_absent(self, repository: str, failures: list[dict[str, Any]]) -> None:
        for failure in failures:
            code = str(failure.get("failureCode", ""))
            if code not in _ABSENT_FAILURES:
                reason = str(failure.get("failureReason", "")).strip()
                detail = f" ({reason})" if reason else ""
                raise AwsError(
                    f"ECR could not return the image from `{repository}`: {code}{detail}."
                )


async def fetch_url(url: str) -> str:
    """Download a small text body (an image config blob) from a pre-signed URL.

    Errors never include the URL: it carries a signature that works until it expires.
    """
    try:
        async with (
            aiohttp.ClientSession(timeout=FETCH_TIMEOUT) as session,
            session.get(url) as response,
        ):
            if response.status != 200:
                raise BlobFetchError(f"download answered HTTP {response.status}")
            if response.content_length is not None and response.content_length > MAX_BLOB_BYTES:
                raise BlobFetchError(f"blob is {response.content_length} bytes; too large")
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body.extend(chunk)
                if len(body) > MAX_BLOB_BYTES:
                    raise BlobFetchError(f"blob is over {MAX_BLOB_BYTES} bytes; too large")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise BlobFetchError(f"download failed: {type(exc).__name__}") from exc
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BlobFetchError("blob is not UTF-8 text") from exc


def _media_type(image: dict[str, Any]) -> str:
    # Images pushed long ago may lack imageManifestMediaType; the manifest's own field then says.
    given = image.get("imageManifestMediaType")
    if given:
        return str(given)
    try:
        document = json.loads(str(image.get("imageManifest", "")))
    except ValueError:
        return ""
    return str(document.get("mediaType", "")) if isinstance(document, dict) else ""


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
