"""Shared pytest wiring: fixture modules from tests/support are registered here."""

pytest_plugins: list[str] = []
pytest_plugins.append("tests.support.synapse")
pytest_plugins.append("tests.support.telegram_double")
pytest_plugins.append("tests.support.postgres")
pytest_plugins.append("tests.support.stores")
pytest_plugins.append("tests.support.memory_channel")
pytest_plugins.append("tests.support.browser")
