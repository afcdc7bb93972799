"""Shared test set-up: quiet TensorFlow, and the corpora the project ships beside it."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tests.schema_template import drop_database
from tests.shared_models import CallAndResponse, call_and_response_model
from textgen.tensorflow_import import import_tensorflow

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# One TensorFlow thread per operation in each test process (the xdist workers and the chatsmith processes
# the tests start, which inherit it): three workers already share two cores, and a tiny model's kernels
# split over two threads only wait for each other. `make test` on a fresh clone, 2 cores: 185.5 s against
# 195.1 s with TensorFlow's default, run back to back (2026-12-06). The kernels are the same.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

POSTGRES_URL_VARIABLE = "CHATSMITH_TEST_POSTGRES_URL"


# Session fixtures that train a model for seconds, besides the tests marked `slow`.
TRAINING_FIXTURES = ("call_and_response",)


def pytest_configure(config: pytest.Config) -> None:
    """Each pytest-xdist worker imports TensorFlow first, as chatsmith's processes do, without Keras's
    optional integrations: collecting the textgen tests imports it anyway."""
    if hasattr(config, "workerinput"):
        import_tensorflow()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test` runs `-n 3 --dist loadscope --no-loadscope-reorder`), where each
    module's tests run together on one worker, send first the modules that take seconds (`slow` tests,
    a model to train), most of them first, then the others by their number of tests, so that the last
    modules handed out are short and no worker is left alone with a long one at the end. Without xdist
    nothing changes."""
    if not hasattr(config, "workerinput"):
        return
    slow = Counter(_module(item) for item in items if _takes_seconds(item))
    tests = Counter(_module(item) for item in items)
    # Stable: the order within a module is kept.
    items.sort(key=lambda item: (-slow[_module(item)], -tests[_module(item)]))


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::")[0]


def _takes_seconds(item: pytest.Item) -> bool:
    fixtures = getattr(item, "fixturenames", ())
    return item.get_closest_marker("slow") is not None or any(name in fixtures for name in TRAINING_FIXTURES)


@pytest.fixture(scope="session")
def call_and_response(tmp_path_factory: pytest.TempPathFactory) -> CallAndResponse:
    """The call-and-response channel's model, for the textgen and bot tests that read context."""
    return call_and_response_model(tmp_path_factory)


@pytest.fixture(scope="session")
def shakespeare() -> str:
    """A slice of Tiny Shakespeare, from the copy chatsmith ships: the same text on every clone."""
    from chatsmith.demo_corpus import demo_corpus

    return demo_corpus()[:60_000]


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database that exists for this test only."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'chatsmith.db'}"
        return
    admin_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not admin_url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_URL_VARIABLE} is not set in CI: .ci/run must start PostgreSQL and set it")
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_VARIABLE}; .ci/run starts a server and sets it")
    name = f"chatsmith_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            drop_database(connection, name)
        admin.dispose()
