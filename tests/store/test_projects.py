import asyncio

import pytest

from keptn.errors import ConflictError, InvalidInputError, NotFoundError
from store import projects, resources
from store.events import get_event, insert_event
from store.resources import ResourceScope
from tests.store.factories import SHIPYARD, shipyard, wire


async def test_create_and_get_project(pool):
    commit = await projects.create_project(pool, "sockshop", shipyard())
    assert len(commit) == 40 and int(commit, 16) >= 0
    project = await projects.get_project(pool, "sockshop")
    assert project is not None
    assert (project.name, project.shipyard, project.shipyard_version) == (
        "sockshop",
        SHIPYARD,
        "spec.keptn.sh/0.2.3",
    )
    assert [s.name for s in project.stages] == ["dev", "staging"]
    assert all(s.services == [] for s in project.stages)
    assert project.stage("staging") is project.stages[1]
    assert project.stage("prod") is None
    # the shipyard is also the project's first resource version
    stored = await resources.get_resource(pool, ResourceScope("sockshop"), "shipyard.yaml")
    assert stored.content == SHIPYARD.encode() and stored.version == commit


async def test_get_unknown_project_is_none(pool):
    assert await projects.get_project(pool, "nope") is None


async def test_create_existing_project_conflicts(pool):
    await projects.create_project(pool, "sockshop", shipyard())
    with pytest.raises(ConflictError) as caught:
        await projects.create_project(pool, "sockshop", shipyard(("prod",)))
    assert caught.value.field == "name"
    project = await projects.get_project(pool, "sockshop")
    assert project is not None and [s.name for s in project.stages] == ["dev", "staging"]


async def test_concurrent_creates_one_wins(pool):
    results = await asyncio.gather(
        *(projects.create_project(pool, "race", shipyard()) for _ in range(5)), return_exceptions=True
    )
    assert sum(isinstance(r, str) for r in results) == 1
    assert sum(isinstance(r, ConflictError) for r in results) == 4


async def test_list_projects_pages_by_name(pool):
    for name in ("charlie", "alpha", "bravo"):
        await projects.create_project(pool, name, shipyard())
    page, total = await projects.list_projects(pool, limit=2)
    assert [p.name for p in page] == ["alpha", "bravo"] and total == 3
    page, total = await projects.list_projects(pool, limit=2, offset=2)
    assert [p.name for p in page] == ["charlie"] and total == 3
    page, total = await projects.list_projects(pool, limit=2, offset=10)
    assert page == [] and total == 3


async def test_update_shipyard_keeps_stages(pool):
    first = await projects.create_project(pool, "sockshop", shipyard())
    reordered = shipyard(("staging", "dev"), text=SHIPYARD + "# v2\n")
    commit = await projects.update_shipyard(pool, "sockshop", reordered)
    assert commit != first
    project = await projects.get_project(pool, "sockshop")
    assert project is not None
    assert project.shipyard.endswith("# v2\n")
    assert [s.name for s in project.stages] == ["staging", "dev"]
    old = await resources.get_resource(pool, ResourceScope("sockshop"), "shipyard.yaml", commit_id=first)
    assert old.content == SHIPYARD.encode()


@pytest.mark.parametrize("stages", [("dev",), ("dev", "staging", "prod"), ("dev", "production")])
async def test_update_shipyard_rejects_stage_changes(pool, stages):
    await projects.create_project(pool, "sockshop", shipyard())
    with pytest.raises(InvalidInputError) as caught:
        await projects.update_shipyard(pool, "sockshop", shipyard(stages))
    assert caught.value.field == "shipyard"
    assert "stage name cannot be changed or removed" in caught.value.message


async def test_update_unknown_project(pool):
    with pytest.raises(NotFoundError):
        await projects.update_shipyard(pool, "nope", shipyard())


async def test_services_are_created_in_every_stage(pool):
    await projects.create_project(pool, "sockshop", shipyard())
    assert await projects.create_service(pool, "sockshop", "carts") == ["dev", "staging"]
    await projects.create_service(pool, "sockshop", "orders")
    project = await projects.get_project(pool, "sockshop")
    assert project is not None
    for stage in project.stages:
        assert [s.name for s in stage.services] == ["carts", "orders"]
    dev, staging = project.stages
    carts = dev.service("carts")
    assert carts is not None and carts.created_at == staging.services[0].created_at
    assert dev.service("nope") is None
    assert await projects.service_exists(pool, "sockshop", "carts")
    assert not await projects.service_exists(pool, "sockshop", "nope")


async def test_create_service_errors(pool):
    with pytest.raises(NotFoundError) as caught:
        await projects.create_service(pool, "nope", "carts")
    assert caught.value.field == "project"
    await projects.create_project(pool, "sockshop", shipyard())
    await projects.create_service(pool, "sockshop", "carts")
    with pytest.raises(ConflictError) as conflict:
        await projects.create_service(pool, "sockshop", "carts")
    assert conflict.value.field == "serviceName"


async def test_delete_service_removes_its_resources_in_a_commit(pool):
    await projects.create_project(pool, "sockshop", shipyard())
    await projects.create_service(pool, "sockshop", "carts")
    scope = ResourceScope("sockshop", "dev", "carts")
    before = await resources.write_resources(pool, scope, [("slo.yaml", b"slo")])
    await insert_event(pool, wire("sh.keptn.event.deployment.triggered", id="d1"))
    commit = await projects.delete_service(pool, "sockshop", "carts")
    assert commit is not None and commit != before
    assert not await projects.service_exists(pool, "sockshop", "carts")
    assert await pool.fetchval("SELECT count(*) FROM service_last_events") == 0
    with pytest.raises(NotFoundError):
        await resources.get_resource(pool, scope, "slo.yaml", commit_id=before)
    # a new service of the same name starts empty; history stays readable
    await projects.create_service(pool, "sockshop", "carts")
    assert (await resources.list_resources(pool, scope))[0] == []
    old = await resources.get_resource(pool, scope, "slo.yaml", commit_id=before)
    assert old.content == b"slo"
    assert await projects.delete_service(pool, "sockshop", "carts") is None


async def test_delete_unknown_service(pool):
    await projects.create_project(pool, "sockshop", shipyard())
    with pytest.raises(NotFoundError) as caught:
        await projects.delete_service(pool, "sockshop", "nope")
    assert caught.value.field == "service"


async def test_delete_project_deletes_everything(pool):
    await projects.create_project(pool, "sockshop", shipyard())
    await projects.create_service(pool, "sockshop", "carts")
    await resources.write_resources(pool, ResourceScope("sockshop", "dev", "carts"), [("a", b"1")])
    await insert_event(pool, wire("sh.keptn.event.deployment.triggered", id="mine"))
    await insert_event(pool, wire(id="theirs", project="other"))
    assert await projects.delete_project(pool, "sockshop") == 1
    assert await projects.get_project(pool, "sockshop") is None
    assert await get_event(pool, "mine") is None
    assert await get_event(pool, "theirs") is not None
    for table in ("stages", "services", "commits", "resource_versions", "service_last_events"):
        assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    assert await pool.fetchval("SELECT count(*) FROM context_roots WHERE project = 'sockshop'") == 0
    with pytest.raises(NotFoundError):
        await projects.delete_project(pool, "sockshop")
    # the name is free again
    await projects.create_project(pool, "sockshop", shipyard())
