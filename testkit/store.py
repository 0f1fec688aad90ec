"""The session store's /metrics text rendered in-process from a service and its storage, as the running
store renders it after a step (for tests that drive `SessionService` directly)."""
from __future__ import annotations

from servicekit.exposition import Part, PartsRenderer
from servicekit.poller import Health
from session_store.ledger import read_ledger
from session_store.metrics import configured_vehicles, session_families
from session_store.service import SessionService
from session_store.storage import Storage


def session_metrics_text(storage: Storage, service: SessionService) -> str:
    """The session families of the service's current view and the storage's ledger, evaluation healthy."""
    families = session_families(service.view(), read_ledger(storage, storage.version), Health(up=True),
                                configured_vehicles(service.config))
    return PartsRenderer([Part(lambda: families)])().text.decode()
