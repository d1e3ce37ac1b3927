"""PostgreSQL persistence through asyncpg: events, projects, stages, services and resources."""
