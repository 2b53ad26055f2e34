"""Alembic environment: migrates the clinic database chosen by CLINIC_DATABASE_URL."""

from alembic import context

from clinic.db import Base, get_engine
from clinic.settings import clinic_database_url

config = context.config
url = config.attributes.get("database_url") or clinic_database_url()


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    with get_engine(url).connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
