import asyncio

import pytest

from keptn.errors import InvalidInputError, NotFoundError
from store import projects, resources
from store.resources import ResourceScope, latest_commit, normalize_uri
from tests.store.factories import SHIPYARD, shipyard

PROJECT = ResourceScope("sockshop")
DEV = ResourceScope("sockshop", "dev")
CARTS = ResourceScope("sockshop", "dev", "carts")


@pytest.fixture
async def project(pool):
    await projects.create_project(pool, "sockshop", shipyard())
    await projects.create_service(pool, "sockshop", "carts")
    return pool


@pytest.mark.parametrize(
    ("uri", "normal"),
    [
        ("slo.yaml", "slo.yaml"),
        ("/slo.yaml", "slo.yaml"),
        ("webhook//webhook.yaml", "webhook/webhook.yaml"),
        ("./helm/./carts.tgz", "helm/carts.tgz"),
        ("a..b.yaml", "a..b.yaml"),
    ],
)
def test_normalize_uri(uri, normal):
    assert normalize_uri(uri) == normal


@pytest.mark.parametrize("uri", ["", "/", "../etc/passwd", "a/../../b", "a/..", "bad\nname"])
def test_normalize_rejects(uri):
    with pytest.raises(InvalidInputError) as caught:
        normalize_uri(uri)
    assert caught.value.field == "resourceURI"


async def test_every_write_is_a_commit_and_reads_go_back_in_time(project):
    pool = project
    c1 = await resources.write_resources(pool, CARTS, [("slo.yaml", b"v1"), ("sli.yaml", b"s1")])
    c2 = await resources.write_resources(pool, CARTS, [("/slo.yaml", b"v2")])
    c3 = await resources.delete_resource(pool, CARTS, "sli.yaml")
    assert len({c1, c2, c3}) == 3
    latest = await resources.get_resource(pool, CARTS, "slo.yaml")
    assert (latest.content, latest.version) == (b"v2", c3)
    at_c1 = await resources.get_resource(pool, CARTS, "slo.yaml", commit_id=c1)
    assert (at_c1.content, at_c1.version) == (b"v1", c1)
    assert await resources.list_resources(pool, CARTS, commit_id=c2) == (["sli.yaml", "slo.yaml"], c2)
    assert await resources.list_resources(pool, CARTS) == (["slo.yaml"], c3)
    with pytest.raises(NotFoundError) as caught:
        await resources.get_resource(pool, CARTS, "sli.yaml")
    assert caught.value.field == "resourceURI"
    assert (await resources.get_resource(pool, CARTS, "sli.yaml", commit_id=c2)).content == b"s1"


async def test_levels_are_separate(project):
    pool = project
    await resources.write_resources(pool, DEV, [("slo.yaml", b"stage")])
    await resources.write_resources(pool, CARTS, [("slo.yaml", b"service")])
    assert (await resources.get_resource(pool, DEV, "slo.yaml")).content == b"stage"
    assert (await resources.get_resource(pool, CARTS, "slo.yaml")).content == b"service"
    assert (await resources.list_resources(pool, PROJECT))[0] == ["shipyard.yaml"]
    assert (await resources.list_resources(pool, DEV))[0] == ["slo.yaml"]
    with pytest.raises(NotFoundError):
        await resources.get_resource(pool, ResourceScope("sockshop", "staging"), "slo.yaml")


async def test_last_write_of_a_uri_in_a_batch_wins(project):
    await resources.write_resources(project, CARTS, [("a", b"1"), ("/a", b"2")])
    assert (await resources.get_resource(project, CARTS, "a")).content == b"2"


async def test_empty_content_is_a_resource(project):
    await resources.write_resources(project, CARTS, [("empty.txt", b"")])
    assert (await resources.get_resource(project, CARTS, "empty.txt")).content == b""


async def test_unknown_scope_commit_and_resource(project):
    pool = project
    with pytest.raises(NotFoundError) as caught:
        await resources.write_resources(pool, ResourceScope("nope"), [("a", b"")])
    assert caught.value.field == "project"
    with pytest.raises(NotFoundError) as caught:
        await resources.list_resources(pool, ResourceScope("sockshop", "prod"))
    assert caught.value.field == "stage"
    with pytest.raises(NotFoundError) as caught:
        await resources.get_resource(pool, ResourceScope("sockshop", "dev", "orders"), "a")
    assert caught.value.field == "service"
    with pytest.raises(NotFoundError) as caught:
        await resources.get_resource(pool, CARTS, "a", commit_id="0" * 40)
    assert caught.value.field == "gitCommitID"
    with pytest.raises(NotFoundError) as caught:
        await resources.delete_resource(pool, CARTS, "never.yaml")
    assert caught.value.field == "resourceURI"
    with pytest.raises(InvalidInputError) as bad:
        await resources.write_resources(pool, CARTS, [])
    assert bad.value.field == "resources"


async def test_commit_of_another_project_is_unknown(project):
    pool = project
    await projects.create_project(pool, "other", shipyard())
    foreign = await latest_commit(pool, "other")
    assert foreign is not None
    with pytest.raises(NotFoundError):
        await resources.list_resources(pool, PROJECT, commit_id=foreign)


async def test_project_shipyard_goes_through_the_project(project):
    pool = project
    with pytest.raises(ValueError, match="parsed shipyard"):
        await resources.write_resources(pool, PROJECT, [("shipyard.yaml", b"x")])
    text = SHIPYARD + "# edited\n"
    await resources.write_resources(
        pool, PROJECT, [("shipyard.yaml", text.encode())], shipyard=shipyard(text=text)
    )
    stored = await projects.get_project(pool, "sockshop")
    assert stored is not None and stored.shipyard == text
    with pytest.raises(InvalidInputError):
        await resources.write_resources(
            pool, PROJECT, [("shipyard.yaml", b"x")], shipyard=shipyard(("prod",), text="x")
        )
    with pytest.raises(InvalidInputError) as caught:
        await resources.delete_resource(pool, PROJECT, "shipyard.yaml")
    assert caught.value.field == "resourceURI"
    # a stage-level shipyard.yaml is just a file
    await resources.write_resources(pool, DEV, [("shipyard.yaml", b"x")])
    await resources.delete_resource(pool, DEV, "shipyard.yaml")


async def test_latest_commit(project):
    pool = project
    created = await latest_commit(pool, "sockshop")
    assert created is not None
    assert await latest_commit(pool, "sockshop", "dev") == created
    dev_write = await resources.write_resources(pool, CARTS, [("slo.yaml", b"1")])
    staging_write = await resources.write_resources(pool, ResourceScope("sockshop", "staging"), [("x", b"1")])
    assert await latest_commit(pool, "sockshop") == staging_write
    assert await latest_commit(pool, "sockshop", "dev") == dev_write
    assert await latest_commit(pool, "sockshop", "staging") == staging_write
    project_write = await resources.write_resources(pool, PROJECT, [("readme.md", b"1")])
    assert await latest_commit(pool, "sockshop", "dev") == project_write
    assert await latest_commit(pool, "nope") is None


async def test_concurrent_writes_make_a_linear_history(project):
    pool = project
    commits = await asyncio.gather(
        *(resources.write_resources(pool, CARTS, [("counter", str(n).encode())]) for n in range(10))
    )
    assert len(set(commits)) == 10
    ordered = [r["id"] for r in await pool.fetch("SELECT id FROM commits ORDER BY seq")]
    # every commit sees exactly the writes before it
    for index, commit in enumerate(ordered[1:], start=1):
        seen = await resources.get_resource(pool, CARTS, "counter", commit_id=commit)
        assert seen.version == commit
        assert ordered.index(commit) == index
    final = await resources.get_resource(pool, CARTS, "counter")
    assert final.version == ordered[-1]
