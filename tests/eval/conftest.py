"""The eval harness on the suite's throwaway server, cloning the suite's own template.

Reusing `template_db` (and its passwords) matters: tool roles are cluster-wide, so a
template migrated with new passwords would lock every other test out.
"""

from __future__ import annotations

import pytest

from local.evaluation.databases import Template
from tests.conftest import Server
from tests.conftest import Template as SuiteTemplate


@pytest.fixture
def eval_template(
    pg_server: Server, template_db: SuiteTemplate, upstreams: dict[str, str]
) -> Template:
    return Template(pg_server.url("postgres"), template_db.name, template_db.passwords, upstreams)
