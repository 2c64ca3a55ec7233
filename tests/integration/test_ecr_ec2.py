"""ECR image lookup and EC2 instance discovery against moto, and the architecture check on both."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from moto.core.responses import ActionResult
from moto.ecr.models import ecr_backends
from moto.ecr.responses import ECRResponse

from bot.errors import AwsNotFoundError
from bot.images import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Platform,
    check_architecture,
)
from integrations.aws import make_client
from integrations.ec2 import Ec2
from integrations.ecr import MAX_BLOB_BYTES, BlobFetchError, Ecr, fetch_url
from standins.loopback import LoopbackServer
from standins.moto_server import MotoServer
from tests.conftest import REGION

ACCOUNT = "123456789012"  # moto's default account
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"

AMD64 = Platform(os="linux", architecture="amd64")
ARM64_V8 = Platform(os="linux", architecture="arm64", variant="v8")


def sha256(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def oci_index() -> str:
    """buildx's multi-platform push: amd64 and arm64 images plus their attestations."""
    entry: dict[str, Any] = {"mediaType": OCI_MANIFEST, "size": 1612}
    attestation: dict[str, Any] = {
        **entry,
        "platform": {"architecture": "unknown", "os": "unknown"},
    }
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    **entry,
                    "digest": sha256("amd64"),
                    "platform": {"architecture": "amd64", "os": "linux"},
                },
                {
                    **entry,
                    "digest": sha256("arm64"),
                    "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
                },
                {
                    **attestation,
                    "digest": sha256("att-amd64"),
                    "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
                },
                {
                    **attestation,
                    "digest": sha256("att-arm64"),
                    "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
                },
            ],
        }
    )


def amd64_manifest_list() -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST_LIST,
            "manifests": [
                {
                    "mediaType": DOCKER_MANIFEST,
                    "digest": sha256("legacy-amd64"),
                    "size": 528,
                    "platform": {"architecture": "amd64", "os": "linux"},
                }
            ],
        }
    )


ARM64_CONFIG = json.dumps({"architecture": "arm64", "os": "linux", "variant": "v8", "config": {}})


def single_manifest(config: str = ARM64_CONFIG) -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256("layer"),
                    "size": 3623807,
                }
            ],
        }
    )


class Registry:
    """Pushes manifests the way `docker push` ends: PutImage with the manifest's own digest."""

    def __init__(self, client: Any, repository: str = "frontend") -> None:
        self.client = client
        self.repository = repository
        client.create_repository(repositoryName=repository)

    def push(self, media_type: str, manifest: str, tag: str | None) -> str:
        digest = sha256(manifest)
        kwargs: dict[str, Any] = {"imageTag": tag} if tag else {}
        self.client.put_image(
            repositoryName=self.repository,
            imageManifest=manifest,
            imageManifestMediaType=media_type,
            imageDigest=digest,
            **kwargs,
        )
        return digest

    def set_pushed_at(self, digest: str, when: datetime) -> None:
        # ECR keeps push times in seconds; moto runs in this process, so tests can set them.
        repository = ecr_backends[ACCOUNT][REGION].repositories[self.repository]
        [image] = [i for i in repository.images if i.image_digest == digest]
        image.image_pushed_at = int(when.timestamp())


class BlobServer(LoopbackServer):
    """Stands in for the S3 URL GetDownloadUrlForLayer hands out."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        super().__init__()
        self.blobs = blobs
        self.requested: list[str] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/blobs/{digest}", self._blob)

    async def _blob(self, request: web.Request) -> web.Response:
        digest = request.match_info["digest"]
        self.requested.append(digest)
        if digest not in self.blobs:
            return web.Response(status=403, text="<Error><Code>AccessDenied</Code></Error>")
        return web.Response(body=self.blobs[digest])


@pytest.fixture
def registry(aws: MotoServer) -> Registry:
    return Registry(make_client("ecr", REGION))


@pytest.fixture
def ecr(registry: Registry) -> Ecr:
    return Ecr(make_client("ecr", REGION))


@pytest.fixture
async def blobs() -> AsyncIterator[BlobServer]:
    server = BlobServer({sha256(ARM64_CONFIG): ARM64_CONFIG.encode()})
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def download_urls(blobs: BlobServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Teach moto GetDownloadUrlForLayer (it raises NotImplementedError) to point at `blobs`."""

    def get_download_url_for_layer(self: ECRResponse) -> ActionResult:
        digest = self._get_param("layerDigest")
        return ActionResult(
            {
                "downloadUrl": f"{blobs.url}/blobs/{digest}?X-Amz-Signature=s3cr3t",
                "layerDigest": digest,
            }
        )

    monkeypatch.setattr(ECRResponse, "get_download_url_for_layer", get_download_url_for_layer)


async def test_find_image_takes_the_first_existing_tag_in_the_order_given(
    ecr: Ecr, registry: Registry
) -> None:
    index_digest = registry.push(OCI_INDEX, oci_index(), "abc1234")
    list_digest = registry.push(DOCKER_MANIFEST_LIST, amd64_manifest_list(), "dev")

    by_dev = await ecr.find_image("frontend", ["no-such-tag", "dev", "abc1234"])
    by_commit = await ecr.find_image("frontend", ["abc1234", "dev"])

    assert by_dev is not None
    assert by_dev.tag == "dev"
    assert by_dev.digest == list_digest
    assert by_dev.media_type == DOCKER_MANIFEST_LIST
    assert by_dev.platforms == [AMD64]
    assert by_dev.registry_uri == f"{REGISTRY}/frontend"
    assert by_dev.reference == f"{REGISTRY}/frontend@{list_digest}"
    assert isinstance(by_dev.pushed_at, datetime)
    assert by_commit is not None
    assert (by_commit.tag, by_commit.digest) == ("abc1234", index_digest)
    assert by_commit.media_type == OCI_INDEX
    assert by_commit.platforms == [AMD64, ARM64_V8]


async def test_find_image_is_none_when_no_tag_exists(ecr: Ecr, registry: Registry) -> None:
    registry.push(OCI_INDEX, oci_index(), "abc1234")

    assert await ecr.find_image("frontend", ["dev", "main"]) is None
    assert await ecr.find_image("frontend", []) is None
    assert await ecr.find_image("frontend", [""]) is None


async def test_image_by_digest(ecr: Ecr, registry: Registry) -> None:
    digest = registry.push(OCI_INDEX, oci_index(), "abc1234")

    image = await ecr.image_by_digest("frontend", digest)

    assert image is not None
    assert (image.repository, image.tag, image.digest) == ("frontend", "abc1234", digest)
    assert image.platforms == [AMD64, ARM64_V8]
    assert await ecr.image_by_digest("frontend", sha256("never pushed")) is None


async def test_single_manifest_without_a_config_fetcher_has_unknown_platforms(
    ecr: Ecr, registry: Registry
) -> None:
    digest = registry.push(OCI_MANIFEST, single_manifest(), "dev")

    image = await ecr.find_image("frontend", ["dev"])

    assert image is not None
    assert (image.digest, image.media_type, image.platforms) == (digest, OCI_MANIFEST, None)


async def test_single_manifest_platform_comes_from_its_config_blob(
    registry: Registry, blobs: BlobServer, download_urls: None
) -> None:
    registry.push(OCI_MANIFEST, single_manifest(), "dev")
    ecr = Ecr(make_client("ecr", REGION), config_fetcher=fetch_url)

    image = await ecr.find_image("frontend", ["dev"])

    assert image is not None
    assert image.platforms == [ARM64_V8]
    assert blobs.requested == [sha256(ARM64_CONFIG)]


async def test_unreadable_config_blob_leaves_platforms_unknown_and_the_lookup_succeeds(
    registry: Registry, blobs: BlobServer, download_urls: None, caplog: pytest.LogCaptureFixture
) -> None:
    digest = registry.push(OCI_MANIFEST, single_manifest(config='{"os": "linux"}'), "dev")
    ecr = Ecr(make_client("ecr", REGION), config_fetcher=fetch_url)

    with caplog.at_level(logging.DEBUG, logger="integrations.ecr"):
        image = await ecr.find_image("frontend", ["dev"])

    assert image is not None
    assert (image.digest, image.platforms) == (digest, None)
    assert blobs.requested == [sha256('{"os": "linux"}')]  # answered 403
    assert "config blob" in caplog.text
    assert "s3cr3t" not in caplog.text  # the pre-signed URL is a credential


async def test_moto_without_get_download_url_leaves_platforms_unknown(
    registry: Registry,
) -> None:
    registry.push(OCI_MANIFEST, single_manifest(), "dev")
    fetched: list[str] = []

    async def fetcher(url: str) -> str:
        fetched.append(url)
        return ARM64_CONFIG

    ecr = Ecr(make_client("ecr", REGION), config_fetcher=fetcher)

    image = await ecr.find_image("frontend", ["dev"])

    assert image is not None
    assert image.platforms is None
    assert fetched == []


async def test_recent_images_newest_pushed_first_tagged_only(ecr: Ecr, registry: Registry) -> None:
    first = registry.push(DOCKER_MANIFEST_LIST, amd64_manifest_list(), "v1")
    second = registry.push(OCI_INDEX, oci_index(), "v2")
    third = registry.push(OCI_MANIFEST, single_manifest(), "v3")
    registry.push(OCI_MANIFEST, single_manifest(config='{"architecture": "arm64"}'), None)

    in_push_order = await ecr.recent_images("frontend")

    assert [i.digest for i in in_push_order] == [third, second, first]
    assert [i.tag for i in in_push_order] == ["v3", "v2", "v1"]
    assert [i.platforms for i in in_push_order] == [None, [AMD64, ARM64_V8], [AMD64]]
    assert {i.registry_uri for i in in_push_order} == {f"{REGISTRY}/frontend"}

    registry.set_pushed_at(first, datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    registry.set_pushed_at(second, datetime(2026, 12, 1, 11, 0, tzinfo=UTC))
    registry.set_pushed_at(third, datetime(2026, 12, 1, 10, 0, tzinfo=UTC))

    by_time = await ecr.recent_images("frontend", limit=2)

    assert [i.digest for i in by_time] == [second, third]
    assert by_time[0].pushed_at == datetime(2026, 12, 1, 11, 0, tzinfo=UTC)


async def test_recent_images_of_an_empty_repository(ecr: Ecr) -> None:
    assert await ecr.recent_images("frontend") == []


async def test_missing_repository_is_a_clear_not_found_error(ecr: Ecr) -> None:
    expected = f"ECR repository `backend` does not exist in {REGION}."

    with pytest.raises(AwsNotFoundError) as by_tag:
        await ecr.find_image("backend", ["dev"])
    with pytest.raises(AwsNotFoundError) as by_digest:
        await ecr.image_by_digest("backend", sha256("x"))
    with pytest.raises(AwsNotFoundError) as recent:
        await ecr.recent_images("backend")

    assert [e.value.user_message for e in (by_tag, by_digest, recent)] == [expected] * 3


async def test_fetch_url_refuses_errors_and_oversized_blobs_without_naming_the_url() -> None:
    server = BlobServer({"small": b'{"os": "linux"}', "huge": b"x" * (MAX_BLOB_BYTES + 1)})
    await server.start()
    try:
        assert await fetch_url(f"{server.url}/blobs/small") == '{"os": "linux"}'
        with pytest.raises(BlobFetchError, match="too large"):
            await fetch_url(f"{server.url}/blobs/huge")
        with pytest.raises(BlobFetchError, match="HTTP 403") as denied:
            await fetch_url(f"{server.url}/blobs/missing?X-Amz-Signature=s3cr3t")
    finally:
        await server.stop()
    with pytest.raises(BlobFetchError) as refused:
        await fetch_url(f"{server.url}/blobs/small?X-Amz-Signature=s3cr3t")

    assert "s3cr3t" not in str(denied.value)
    assert "s3cr3t" not in str(refused.value)


class Fleet:
    """EC2 instances in moto; the architecture comes from the AMI, as on AWS."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._amis: dict[str, str] = {}

    def ami(self, architecture: str) -> str:
        if architecture in self._amis:
            return self._amis[architecture]
        images = self.client.describe_images(
            Filters=[
                {"Name": "architecture", "Values": [architecture]},
                {"Name": "name", "Values": ["al2023-ami-*"]},
            ]
        )["Images"]
        self._amis[architecture] = str(images[0]["ImageId"])
        return self._amis[architecture]

    def run(self, instance_type: str, architecture: str, **tags: str) -> str:
        response = self.client.run_instances(
            ImageId=self.ami(architecture),
            InstanceType=instance_type,
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        )
        return str(response["Instances"][0]["InstanceId"])


@pytest.fixture
def fleet(aws: MotoServer) -> Fleet:
    return Fleet(make_client("ec2", REGION))


@pytest.fixture
def ec2(aws: MotoServer) -> Ec2:
    return Ec2(make_client("ec2", REGION))


async def test_find_instances_by_tags_all_of_which_must_match(fleet: Fleet, ec2: Ec2) -> None:
    web_1 = fleet.run("t4g.small", "arm64", Environment="dev", Name="web-1")
    web_2 = fleet.run("t4g.small", "arm64", Environment="dev", Name="web-2")
    api = fleet.run("t3.small", "x86_64", Environment="prod", Name="web-1")

    dev = await ec2.find_instances({"Environment": "dev"})
    one = await ec2.find_instances({"Environment": "dev", "Name": "web-1"})
    prod = await ec2.find_instances({"Environment": "prod"})

    assert [(i.instance_id, i.name, i.architecture) for i in dev] == [
        (web_1, "web-1", "arm64"),
        (web_2, "web-2", "arm64"),
    ]
    assert {(i.state, i.instance_type) for i in dev} == {("running", "t4g.small")}
    assert all(i.private_ip for i in dev)
    assert [i.instance_id for i in one] == [web_1]
    assert [(i.instance_id, i.architecture, i.instance_type) for i in prod] == [
        (api, "x86_64", "t3.small")
    ]
    assert await ec2.find_instances({"Environment": "staging"}) == []
    assert await ec2.find_instances({"Environment": "prod", "Name": "web-2"}) == []


async def test_find_instances_reports_stopped_but_not_terminated(fleet: Fleet, ec2: Ec2) -> None:
    running = fleet.run("t4g.small", "arm64", Environment="dev", Name="web-1")
    stopped = fleet.run("t4g.small", "arm64", Environment="dev", Name="web-2")
    gone = fleet.run("t4g.small", "arm64", Environment="dev", Name="web-3")
    fleet.client.stop_instances(InstanceIds=[stopped])
    fleet.client.terminate_instances(InstanceIds=[gone])

    found = await ec2.find_instances({"Environment": "dev"})

    assert [(i.instance_id, i.state) for i in found] == [
        (running, "running"),
        (stopped, "stopped"),
    ]


async def test_tag_values_match_exactly_not_as_wildcards(fleet: Fleet, ec2: Ec2) -> None:
    fleet.run("t4g.small", "arm64", Environment="dev", Name="web-1")

    assert await ec2.find_instances({"Environment": "de*"}) == []
    with pytest.raises(ValueError, match="at least one tag"):
        await ec2.find_instances({})


async def test_amd64_image_against_graviton_instances_is_a_mismatch(
    ecr: Ecr, registry: Registry, fleet: Fleet, ec2: Ec2
) -> None:
    registry.push(DOCKER_MANIFEST_LIST, amd64_manifest_list(), "dev")
    registry.push(OCI_INDEX, oci_index(), "abc1234")
    web_1 = fleet.run("t4g.small", "arm64", Environment="dev", Name="web-1")
    web_2 = fleet.run("t4g.small", "arm64", Environment="dev", Name="web-2")
    instances = {
        i.instance_id: i.architecture for i in await ec2.find_instances({"Environment": "dev"})
    }
    legacy = await ecr.find_image("frontend", ["dev"])
    multi = await ecr.find_image("frontend", ["abc1234"])
    assert legacy is not None
    assert multi is not None

    mismatch = check_architecture(instances, legacy.platforms)
    match = check_architecture(instances, multi.platforms)

    assert mismatch.verdict == "mismatch"
    assert mismatch.detail == (
        f"image is linux/amd64 only; instances are arm64 ({', '.join(sorted([web_1, web_2]))})"
    )
    assert match.verdict == "match"
