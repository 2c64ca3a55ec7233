"""Puts images in ECR and instances in EC2 (moto), the way a real pipeline and fleet would look.

ECR images are pushed as OCI indexes with the given platforms (or as a single manifest), with
explicit sha256 digests (moto's own are not the manifest's sha256); EC2 instances are launched
from an AMI of the wanted architecture, so DescribeInstances reports it as AWS does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
_INSTANCE_TYPES = {"arm64": "t4g.small", "x86_64": "t3.small"}


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _manifest(platform: str, salt: str) -> bytes:
    config = _digest(f"config {platform} {salt}".encode())
    layer = _digest(f"layer {platform} {salt}".encode())
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config, "size": 1470},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer, "size": 31_457_280}],
        },
        separators=(",", ":"),
    ).encode()


def push_image(
    ecr: Any,
    repository: str,
    tags: Sequence[str],
    *,
    platforms: Sequence[str] = ("linux/arm64",),
    index: bool = True,
    salt: str = "",
) -> str:
    """Push an image under `tags`; returns its digest (of the index, or the single manifest)."""
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=repository)
    children = []
    for platform in platforms:
        body = _manifest(platform, salt or ",".join(tags))
        digest = _digest(body)
        ecr.put_image(
            repositoryName=repository,
            imageManifest=body.decode(),
            imageManifestMediaType=OCI_MANIFEST,
            imageDigest=digest,
        )
        os_name, _, arch = platform.partition("/")
        arch, _, variant = arch.partition("/")
        entry: dict[str, Any] = {"os": os_name, "architecture": arch}
        if variant:
            entry["variant"] = variant
        children.append(
            {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body), "platform": entry}
        )
    if index:
        top = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children},
            separators=(",", ":"),
        ).encode()
        media_type = OCI_INDEX
    else:
        top = _manifest(platforms[0], (salt or ",".join(tags)) + "-single")
        media_type = OCI_MANIFEST
    digest = _digest(top)
    for tag in tags:
        ecr.put_image(
            repositoryName=repository,
            imageManifest=top.decode(),
            imageManifestMediaType=media_type,
            imageTag=tag,
            imageDigest=digest,
        )
    return digest


def launch_instances(
    ec2: Any, names: Sequence[str], tags: Mapping[str, str], *, architecture: str = "arm64"
) -> list[str]:
    """Run one instance per name, tagged `tags` + Name; returns their ids."""
    [image] = ec2.describe_images(Filters=[{"Name": "architecture", "Values": [architecture]}])[
        "Images"
    ][:1]
    ids = []
    for name in names:
        response = ec2.run_instances(
            ImageId=image["ImageId"],
            InstanceType=_INSTANCE_TYPES[architecture],
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": k, "Value": v} for k, v in {**tags, "Name": name}.items()],
                }
            ],
        )
        ids.append(str(response["Instances"][0]["InstanceId"]))
    return ids
