"""The schema's history as Alembic revisions (``versions/``), applied by ``dependents db upgrade``."""
