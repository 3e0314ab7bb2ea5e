"""The NetSuite sync engine: link an application to a customer and write the fields an analyst ticked.

* :mod:`bot.sync.fields` -- the six mappings;
* :mod:`bot.sync.compare` -- our values beside NetSuite's, and fingerprints of what the analyst saw;
* :mod:`bot.sync.service` -- link, compare, request, cancel, retry (the durable row is committed with
  the click's audit record);
* :mod:`bot.sync.executor` -- the worker side: claim a row, re-read NetSuite, write what did not
  change meanwhile, verify, update the mirror, report;
* :mod:`bot.sync.jobs` -- RQ jobs and the reconcile pass that finds lost jobs;
* :mod:`bot.sync.schedule` -- "instant" or "daily at HH:MM <zone>".

:class:`SyncOptions` gathers the engine's settings; :meth:`SyncOptions.from_settings` reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.sync.schedule import SyncSchedule
from netsuite.writes import DEFAULT_RECORD_URL, WriteOptions

if TYPE_CHECKING:
    from bot.settings import Settings
    from bot.sync.compare import CompanyNameStyle


@dataclass(frozen=True)
class SyncOptions:
    """How syncs are scheduled, retried and written."""

    schedule: SyncSchedule = field(default_factory=SyncSchedule)
    max_attempts: int = 5
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    lease_seconds: float = 900.0
    """A ``running`` row older than this belongs to a dead worker; the reconcile pass takes it back.
    Keep it above the longest sync (every NetSuite request with all its own retries)."""
    external_id_prefix: str = "credit-desk-"
    company_name_style: CompanyNameStyle = "legal_dba"
    writes: WriteOptions = field(default_factory=WriteOptions)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 < self.retry_base_seconds <= self.retry_max_seconds:
            raise ValueError("retry delays must satisfy 0 < base <= max")
        if self.lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        if self.company_name_style not in ("legal", "dba", "legal_dba"):
            raise ValueError(f"unknown company name style {self.company_name_style!r}")

    @classmethod
    def from_settings(cls, settings: Settings) -> SyncOptions:
        """Options from settings. A setting that this deployment's ``Settings`` does not define
        yet keeps its default here, so the engine runs before every knob is exposed."""

        def get(name: str, default: Any) -> Any:
            value = getattr(settings, name, None)
            return default if value is None else value

        defaults = get("netsuite_new_customer_defaults", "{}")
        if isinstance(defaults, str):
            try:
                defaults = json.loads(defaults or "{}")
            except ValueError as exc:
                raise ValueError("NETSUITE_NEW_CUSTOMER_DEFAULTS must be a JSON object") from exc
        if not isinstance(defaults, dict):
            raise ValueError("NETSUITE_NEW_CUSTOMER_DEFAULTS must be a JSON object")
        writes = WriteOptions(
            tax_field=get("netsuite_tax_reg_field", "vatRegNumber"),
            tax_nexus_country=get("netsuite_tax_nexus_country", "US"),
            subsidiary_id=getattr(settings, "netsuite_subsidiary_id", None),
            new_customer_defaults=defaults,
            contact_role_id=getattr(settings, "netsuite_contact_role_id", None),
            record_url_template=get("netsuite_record_url_template", DEFAULT_RECORD_URL),
            account_id=settings.netsuite_account_id,
        )
        return cls(
            schedule=SyncSchedule.parse(get("sync_schedule", "instant")),
            max_attempts=get("sync_max_attempts", 5),
            retry_base_seconds=get("sync_retry_base_seconds", 30.0),
            retry_max_seconds=get("sync_retry_max_seconds", 3600.0),
            lease_seconds=get("sync_lease_seconds", 900.0),
            external_id_prefix=get("sync_external_id_prefix", "credit-desk-"),
            company_name_style=get("sync_company_name", "legal_dba"),
            writes=writes,
        )
