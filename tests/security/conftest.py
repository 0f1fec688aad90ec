"""The security tests' one running stack (testkit.security), session scope: every module that needs it
shares one set of processes."""
from __future__ import annotations

import os
import tempfile
from typing import Iterator

import pytest

from testkit.security import SecurityStack, security_stack

# Hypothesis keeps caches in ./.hypothesis by default: keep them out of the checkout.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "twc-tests-hypothesis"))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecurityStack]:
    with security_stack(tmp_path_factory.mktemp("security-stack")) as running:
        yield running
