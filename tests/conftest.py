"""Root test configuration: fixtures live in tests/fixtures/ and are loaded as plugins."""

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.json_server",
    "tests.fixtures.prometheus",
    "tests.fixtures.receiver",
    "tests.fixtures.temporal",
    "tests.harness.crashes",
]
