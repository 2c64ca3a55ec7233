"""Reading platforms from manifests and configs, and checking them against instances."""

from __future__ import annotations

import json

import pytest

from bot.images import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    ArchitectureCheck,
    Platform,
    check_architecture,
    config_digest,
    ec2_to_oci_architecture,
    platform_from_config,
    platforms_from_manifest,
)

AMD64 = Platform(os="linux", architecture="amd64")
ARM64 = Platform(os="linux", architecture="arm64")
ARM64_V8 = Platform(os="linux", architecture="arm64", variant="v8")
ARM_V7 = Platform(os="linux", architecture="arm", variant="v7")


def digest(n: int) -> str:
    return "sha256:" + f"{n:x}" * 64


# What `docker buildx build --platform linux/amd64,linux/arm64 --push` stores: one image per
# platform plus a provenance attestation per platform.
BUILDX_INDEX = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest(1),
                "size": 1612,
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest(2),
                "size": 1612,
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest(3),
                "size": 566,
                "annotations": {
                    "vnd.docker.reference.digest": digest(1),
                    "vnd.docker.reference.type": "attestation-manifest",
                },
                "platform": {"architecture": "unknown", "os": "unknown"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest(4),
                "size": 566,
                "annotations": {
                    "vnd.docker.reference.digest": digest(2),
                    "vnd.docker.reference.type": "attestation-manifest",
                },
                "platform": {"architecture": "unknown", "os": "unknown"},
            },
        ],
    }
)


def manifest_list(*platforms: dict[str, str]) -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST_LIST,
            "manifests": [
                {"mediaType": DOCKER_MANIFEST, "digest": digest(i + 1), "size": 528, "platform": p}
                for i, p in enumerate(platforms)
            ],
        }
    )


def single_manifest(media_type: str, config_media_type: str) -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_media_type, "digest": digest(9), "size": 1470},
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest(8),
                    "size": 3623807,
                }
            ],
        }
    )


OCI_SINGLE = single_manifest(OCI_MANIFEST, "application/vnd.oci.image.config.v1+json")
DOCKER_SINGLE = single_manifest(DOCKER_MANIFEST, "application/vnd.docker.container.image.v1+json")


@pytest.mark.parametrize(
    ("media_type", "manifest", "expected"),
    [
        pytest.param(OCI_INDEX, BUILDX_INDEX, [AMD64, ARM64_V8], id="buildx-oci-index"),
        pytest.param(
            DOCKER_MANIFEST_LIST,
            manifest_list({"architecture": "amd64", "os": "linux"}),
            [AMD64],
            id="docker-list-amd64-only",
        ),
        pytest.param(
            DOCKER_MANIFEST_LIST,
            manifest_list(
                {"architecture": "arm", "os": "linux", "variant": "v7"},
                {"architecture": "arm64", "os": "linux"},
                {"architecture": "arm64", "os": "linux"},
            ),
            [ARM_V7, ARM64],
            id="docker-list-duplicates-dropped",
        ),
        pytest.param(
            DOCKER_MANIFEST_LIST,
            json.dumps(
                {
                    "mediaType": DOCKER_MANIFEST_LIST,
                    "manifests": [
                        {"digest": digest(1), "platform": {"architecture": "amd64", "os": "linux"}},
                        {
                            "digest": digest(2),
                            "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
                            "platform": {"architecture": "arm64", "os": "linux"},
                        },
                    ],
                }
            ),
            [AMD64],
            id="attestation-by-annotation-alone",
        ),
        pytest.param(
            "", BUILDX_INDEX, [AMD64, ARM64_V8], id="no-media-type-given-manifest-field-decides"
        ),
        pytest.param(
            OCI_INDEX,
            json.dumps(
                {
                    "mediaType": OCI_INDEX,
                    "manifests": [
                        {
                            "digest": digest(3),
                            "platform": {"architecture": "unknown", "os": "unknown"},
                        },
                        {"digest": digest(4)},
                    ],
                }
            ),
            None,
            id="index-without-real-platforms",
        ),
        pytest.param(OCI_MANIFEST, OCI_SINGLE, None, id="oci-single-manifest"),
        pytest.param(DOCKER_MANIFEST, DOCKER_SINGLE, None, id="docker-single-manifest"),
        pytest.param(OCI_INDEX, "{not json", None, id="not-json"),
        pytest.param(OCI_INDEX, "[]", None, id="not-an-object"),
    ],
)
def test_platforms_from_manifest(
    media_type: str, manifest: str, expected: list[Platform] | None
) -> None:
    assert platforms_from_manifest(media_type, manifest) == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(
            json.dumps(
                {
                    "architecture": "arm64",
                    "os": "linux",
                    "variant": "v8",
                    "config": {"Cmd": ["node", "server.js"]},
                    "rootfs": {"type": "layers", "diff_ids": [digest(7)]},
                }
            ),
            ARM64_V8,
            id="arm64-with-variant",
        ),
        pytest.param('{"architecture": "amd64", "os": "linux"}', AMD64, id="amd64"),
        pytest.param('{"architecture": "arm64", "os": "linux", "variant": ""}', ARM64, id="empty"),
        pytest.param('{"os": "linux"}', None, id="no-architecture"),
        pytest.param('{"architecture": 64, "os": "linux"}', None, id="architecture-not-a-string"),
        pytest.param("<html>AccessDenied</html>", None, id="not-json"),
    ],
)
def test_platform_from_config(config: str, expected: Platform | None) -> None:
    assert platform_from_config(config) == expected


@pytest.mark.parametrize(
    ("media_type", "manifest", "expected"),
    [
        pytest.param(OCI_MANIFEST, OCI_SINGLE, digest(9), id="oci-image"),
        pytest.param(DOCKER_MANIFEST, DOCKER_SINGLE, digest(9), id="docker-image"),
        pytest.param(
            OCI_MANIFEST,
            single_manifest(OCI_MANIFEST, "application/vnd.cncf.helm.config.v1+json"),
            None,
            id="not-an-image-config",
        ),
        pytest.param(OCI_INDEX, BUILDX_INDEX, None, id="index-has-no-config"),
    ],
)
def test_config_digest_only_for_image_configs(
    media_type: str, manifest: str, expected: str | None
) -> None:
    assert config_digest(media_type, manifest) == expected


@pytest.mark.parametrize(
    ("ec2", "oci"),
    [
        ("arm64", "arm64"),
        ("x86_64", "amd64"),
        ("arm64_mac", "arm64"),
        ("x86_64_mac", "amd64"),
        ("i386", "386"),
        ("riscv64", "riscv64"),
    ],
)
def test_ec2_to_oci_architecture(ec2: str, oci: str) -> None:
    assert ec2_to_oci_architecture(ec2) == oci


def test_platform_prints_as_docker_spells_it() -> None:
    assert [str(p) for p in (AMD64, ARM64_V8)] == ["linux/amd64", "linux/arm64/v8"]


@pytest.mark.parametrize(
    ("instances", "platforms", "expected"),
    [
        pytest.param(
            {"i-0abc": "arm64", "i-0def": "arm64"},
            [AMD64, ARM64_V8],
            ArchitectureCheck(
                verdict="match", detail="image provides linux/arm64 for all 2 instances"
            ),
            id="multi-platform-on-graviton",
        ),
        pytest.param(
            {"i-0abc": "x86_64"},
            [AMD64],
            ArchitectureCheck(
                verdict="match", detail="image provides linux/amd64 for instance i-0abc"
            ),
            id="amd64-on-x86",
        ),
        pytest.param(
            {"i-0def": "arm64", "i-0abc": "x86_64"},
            [AMD64, ARM64],
            ArchitectureCheck(
                verdict="match",
                detail="image provides linux/amd64 and linux/arm64 for all 2 instances",
            ),
            id="mixed-fleet-both-provided",
        ),
        pytest.param(
            {"i-0def": "arm64", "i-0abc": "arm64"},
            [AMD64],
            ArchitectureCheck(
                verdict="mismatch",
                detail="image is linux/amd64 only; instances are arm64 (i-0abc, i-0def)",
            ),
            id="amd64-image-on-graviton",
        ),
        pytest.param(
            {"i-0abc": "arm64"},
            [AMD64],
            ArchitectureCheck(
                verdict="mismatch", detail="image is linux/amd64 only; instance i-0abc is arm64"
            ),
            id="one-instance",
        ),
        pytest.param(
            {"i-1": "arm64", "i-2": "x86_64", "i-3": "arm64"},
            [AMD64, ARM_V7],
            ArchitectureCheck(
                verdict="mismatch",
                detail="image provides linux/amd64 and linux/arm/v7; arm64 instances: i-1, i-3",
            ),
            id="32-bit-arm-is-not-arm64",
        ),
        pytest.param(
            {"i-1": "x86_64"},
            [Platform(os="windows", architecture="amd64")],
            ArchitectureCheck(
                verdict="mismatch",
                detail="image has no linux platform (windows/amd64); instance i-1 is amd64",
            ),
            id="windows-only-image",
        ),
        pytest.param(
            {f"i-{n}": "arm64" for n in range(7)},
            [AMD64],
            ArchitectureCheck(
                verdict="mismatch",
                detail="image is linux/amd64 only; "
                "instances are arm64 (i-0, i-1, i-2, i-3, i-4 and 2 more)",
            ),
            id="long-fleet-is-shortened",
        ),
    ],
)
def test_check_architecture(
    instances: dict[str, str], platforms: list[Platform], expected: ArchitectureCheck
) -> None:
    assert check_architecture(instances, platforms) == expected


def test_unknown_when_the_image_names_no_platform() -> None:
    check = check_architecture({"i-0abc": "arm64"}, None)

    assert check.verdict == "unknown"
    assert "architecture is unknown" in check.detail


def test_unknown_when_there_are_no_instances() -> None:
    check = check_architecture({}, [AMD64])

    assert check == ArchitectureCheck(
        verdict="unknown", detail="no instances to check the image's architecture against"
    )
