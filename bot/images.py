"""Which platforms an image provides, and whether they fit the instances it is deployed to."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

MULTI_PLATFORM_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
SINGLE_MANIFEST_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_MEDIA_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)

# Image config blobs (the only configs that carry an architecture); other artifacts, such as
# signatures or Helm charts, use their own config media types.
IMAGE_CONFIG_MEDIA_TYPES = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)

_ATTESTATION_REFERENCE_TYPE = "attestation-manifest"

_EC2_TO_OCI = {
    "arm64": "arm64",
    "arm64_mac": "arm64",
    "x86_64": "amd64",
    "x86_64_mac": "amd64",
    "i386": "386",
}

# Enough instance ids to recognise the fleet without flooding a Slack message.
_MAX_LISTED_INSTANCES = 5


class Platform(BaseModel):
    """An OCI platform, named as in image indexes (amd64, arm64, arm)."""

    model_config = ConfigDict(frozen=True)

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        parts = [self.os, self.architecture] + ([self.variant] if self.variant else [])
        return "/".join(parts)


class ArchitectureCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    verdict: Literal["match", "mismatch", "unknown"]
    detail: str


def platforms_from_manifest(media_type: str, manifest: str) -> list[Platform] | None:
    """The platforms of a multi-platform image; None when the manifest alone can't tell.

    A single-platform manifest names no architecture (that is in its config blob), and an
    index whose entries carry no platform says nothing either, so both give None.
    """
    document = _json_object(manifest)
    if document is None:
        return None
    kind = media_type.strip() or str(document.get("mediaType", ""))
    if kind not in MULTI_PLATFORM_MEDIA_TYPES:
        return None
    entries = document.get("manifests")
    if not isinstance(entries, list):
        return None
    platforms: list[Platform] = []
    for entry in entries:
        if not isinstance(entry, dict) or _is_attestation(entry):
            continue
        platform = _platform(entry.get("platform"))
        if platform is not None and platform not in platforms:
            platforms.append(platform)
    return platforms or None


def platform_from_config(config_json: str) -> Platform | None:
    """The platform an image config blob declares, e.g. {"architecture": "arm64", "os": "linux"}."""
    return _platform(_json_object(config_json))


def config_digest(media_type: str, manifest: str) -> str | None:
    """The digest of a single-platform image's config blob, where its architecture is written."""
    document = _json_object(manifest)
    if document is None:
        return None
    kind = media_type.strip() or str(document.get("mediaType", ""))
    if kind not in SINGLE_MANIFEST_MEDIA_TYPES:
        return None
    config = document.get("config")
    if not isinstance(config, dict) or config.get("mediaType") not in IMAGE_CONFIG_MEDIA_TYPES:
        return None
    digest = config.get("digest")
    return digest if isinstance(digest, str) and digest else None


def ec2_to_oci_architecture(ec2_arch: str) -> str:
    """EC2's architecture name (from the AMI) as image platforms spell it; unknown names as-is."""
    return _EC2_TO_OCI.get(ec2_arch, ec2_arch)


def check_architecture(
    instance_architectures: dict[str, str], platforms: list[Platform] | None
) -> ArchitectureCheck:
    """Whether every instance (id -> EC2 architecture) can run one of the image's platforms."""
    if not instance_architectures:
        return ArchitectureCheck(
            verdict="unknown", detail="no instances to check the image's architecture against"
        )
    if platforms is None:
        return ArchitectureCheck(
            verdict="unknown",
            detail="the image's architecture is unknown (its manifest names no platform), "
            "so it could not be checked against the instances",
        )
    provided = {p.architecture for p in platforms if p.os == "linux"}
    wanted: dict[str, list[str]] = {}
    for instance_id, ec2_arch in sorted(instance_architectures.items()):
        wanted.setdefault(ec2_to_oci_architecture(ec2_arch), []).append(instance_id)
    missing = {arch: ids for arch, ids in wanted.items() if arch not in provided}
    if missing:
        instances = "; ".join(
            _instances_phrase(arch, ids, len(wanted) == len(missing) == 1)
            for arch, ids in sorted(missing.items())
        )
        return ArchitectureCheck(
            verdict="mismatch", detail=f"{_platforms_phrase(platforms)}; {instances}"
        )
    count = len(instance_architectures)
    noun = (
        f"instance {next(iter(instance_architectures))}" if count == 1 else f"all {count} instances"
    )
    return ArchitectureCheck(
        verdict="match",
        detail=f"image provides {_join(f'linux/{arch}' for arch in sorted(wanted))} for {noun}",
    )


def _platforms_phrase(platforms: list[Platform]) -> str:
    linux = [str(p) for p in platforms if p.os == "linux"]
    if not linux:
        others = ", ".join(str(p) for p in platforms)
        return f"image has no linux platform ({others})"
    if len(linux) == 1:
        return f"image is {linux[0]} only"
    return f"image provides {_join(linux)}"


def _instances_phrase(arch: str, ids: list[str], whole_fleet: bool) -> str:
    shown = ", ".join(ids[:_MAX_LISTED_INSTANCES])
    if len(ids) > _MAX_LISTED_INSTANCES:
        shown += f" and {len(ids) - _MAX_LISTED_INSTANCES} more"
    if len(ids) == 1:
        return f"instance {shown} is {arch}"
    return f"instances are {arch} ({shown})" if whole_fleet else f"{arch} instances: {shown}"


def _join(items: Iterable[str]) -> str:
    listed = list(items)
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]


def _is_attestation(entry: dict[str, Any]) -> bool:
    annotations = entry.get("annotations")
    if isinstance(annotations, dict) and (
        annotations.get("vnd.docker.reference.type") == _ATTESTATION_REFERENCE_TYPE
    ):
        return True
    platform = entry.get("platform")
    return isinstance(platform, dict) and "unknown" in (
        platform.get("os"),
        platform.get("architecture"),
    )


def _platform(value: object) -> Platform | None:
    if not isinstance(value, dict):
        return None
    os_name, architecture, variant = (
        value.get("os"),
        value.get("architecture"),
        value.get("variant"),
    )
    if not isinstance(os_name, str) or not isinstance(architecture, str):
        return None
    if not os_name or not architecture:
        return None
    return Platform(
        os=os_name,
        architecture=architecture,
        variant=variant if isinstance(variant, str) and variant else None,
    )


def _json_object(text: str) -> dict[str, Any] | None:
    # Manifests come from ECR and are valid JSON in practice; anything else just means "unknown".
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None
