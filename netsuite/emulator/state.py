"""The emulator's mutable account: lazily derived base data plus an overlay of changes.

``SeedData`` answers for every record nobody has touched. The first write to a base record copies
it into the overlay (with a fresh ``lastmodifieddate``), creates land there directly, and deletions
hide a record and add a ``deletedrecord`` row. Memory therefore grows with the number of writes,
never with the size of the seeded account.

All methods are thread-safe (one re-entrant lock); readers get copies so no caller can change a
stored record behind the lock's back. The one exception is SuiteQL's read path (``peek_customer``,
``peek_contacts_of_customer``, ``scan_customers(shared=True)``): it only reads, so it gets the
records themselves, and base records come from a small LRU cache -- a page of customers, then its
address books and contacts, generates each customer once instead of three times (memory: at
most ``cache_size`` base customers). Tests use the public methods to act "in NetSuite"
meanwhile, e.g. ``state.edit_customer(1005, credit_limit=Decimal("5000"))``.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

from netsuite.emulator.model import Contact, Customer, DeletedRecord
from netsuite.emulator.seed import (
    LINES_PER_CUSTOMER_ID,
    NKEY_OFFSET,
    SeedData,
)

SortKey = tuple[datetime, int]
Loader = Callable[[], Any]

BASE_CACHE_SIZE = 4096
"""Base customers (with their contacts) kept for SuiteQL reads: a few pages of 1000, so a page and
the address/contact queries that follow it -- and a reader one page ahead -- all hit the cache."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EmulatorState:
    """A NetSuite account: ``customers`` seeded customers from ``seed``, plus every change since."""

    def __init__(
        self,
        seed: int = 1,
        customers: int = 200,
        *,
        clock: Callable[[], datetime] | None = None,
        cache_size: int = BASE_CACHE_SIZE,
    ) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.base = SeedData(seed, customers)
        self._cache_size = cache_size
        self._cache: OrderedDict[int, tuple[Customer, list[Contact]]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._clock = clock or _utc_now
        self._lock = threading.RLock()
        self._customers: dict[int, Customer] = {}
        self._external_ids: dict[str, int] = {}
        self._entity_ids: dict[str, int] = {}
        self._nkey_owner: dict[int, int] = {}
        self._contacts: dict[int, Contact] = {}
        self._hidden_customers: set[int] = set()  # base ids that are overlaid or deleted
        self._deleted_customers: set[int] = set()
        self._deleted_contacts: set[int] = set()
        self._deletions: list[DeletedRecord] = []
        self._next_customer_id = self.base.max_base_customer_id + 1
        self._next_line_id = self.base.first_free_line_id
        self._next_contact_id = self.base.first_free_contact_id

    @property
    def lock(self) -> threading.RLock:
        """Hold it to make several reads and writes one atomic step (the web layer does)."""
        return self._lock

    # --- time and ids --------------------------------------------------------------------------

    def now(self) -> datetime:
        """The account's clock, truncated to whole seconds as SuiteQL shows it."""
        return self._clock().astimezone(UTC).replace(microsecond=0)

    def allocate_customer_id(self) -> int:
        with self._lock:
            value = self._next_customer_id
            self._next_customer_id += 1
            return value

    def allocate_line(self) -> tuple[int, int]:
        """A new address-book line id and its address subrecord key (``nkey``)."""
        with self._lock:
            line_id = self._next_line_id
            self._next_line_id += 1
            return line_id, line_id + NKEY_OFFSET

    def allocate_contact_id(self) -> int:
        with self._lock:
            value = self._next_contact_id
            self._next_contact_id += 1
            return value

    # --- customers -----------------------------------------------------------------------------

    def _load_customer(self, customer_id: int) -> Customer | None:
        """The stored customer (not a copy) or ``None``; caller holds the lock."""
        if customer_id in self._deleted_customers:
            return None
        stored = self._customers.get(customer_id)
        if stored is not None:
            return stored
        index = self.base.index_of(customer_id)
        return None if index is None else self.base.customer(index)

    def _base_shared(self, index: int) -> tuple[Customer, list[Contact]]:
        """Base customer ``index`` and its contacts, shared (never mutate), from the LRU cache.

        Base records are a pure function of ``(seed, index)``, so a cached one is never stale;
        whether it is still visible (not overlaid, not deleted) is decided by the callers.
        """
        with self._cache_lock:
            found = self._cache.get(index)
            if found is not None:
                self._cache.move_to_end(index)
                return found
        built = self.base.customer_with_contacts(index)  # outside the lock: generation is slow
        if self._cache_size:
            with self._cache_lock:
                self._cache[index] = built
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return built

    @property
    def cached_customers(self) -> int:
        """How many generated base customers the read cache holds (at most ``cache_size``)."""
        with self._cache_lock:
            return len(self._cache)

    def peek_customer(self, customer_id: int) -> Customer | None:
        """Customer ``customer_id`` without a copy, for readers that never change it (SuiteQL).

        Stored overlay records are replaced on save, never changed in place, so the object a
        reader holds stays consistent while others write.
        """
        with self._lock:
            if customer_id in self._deleted_customers:
                return None
            stored = self._customers.get(customer_id)
            if stored is not None:
                return stored
            index = self.base.index_of(customer_id)
        return None if index is None else self._base_shared(index)[0]

    def get_customer(self, customer_id: int) -> Customer | None:
        """A copy of customer ``customer_id``, or ``None`` if it does not exist (or was deleted)."""
        with self._lock:
            found = self._load_customer(customer_id)
            if found is None:
                return None
            return found.copy() if customer_id in self._customers else found

    def customer_id_by_external_id(self, external_id: str) -> int | None:
        with self._lock:
            owner = self._external_ids.get(external_id)
            if owner is not None:
                return owner
            if external_id.startswith("LEGACY-") and external_id[7:].isdigit():
                candidate = int(external_id[7:])
                if candidate in self._hidden_customers or candidate in self._customers:
                    return None
                index = self.base.index_of(candidate)
                if index is not None and self.base.customer(index).external_id == external_id:
                    return candidate
            return None

    def customer_id_by_entity_id(self, entity_id: str) -> int | None:
        with self._lock:
            owner = self._entity_ids.get(entity_id)
            if owner is not None:
                return owner
            if entity_id.startswith("C") and entity_id[1:].isdigit():
                candidate = int(entity_id[1:])
                if candidate not in self._hidden_customers and self.base.index_of(candidate) is not None:
                    return candidate
            return None

    def save_customer(self, customer: Customer, *, touch: bool = True) -> Customer:
        """Store ``customer`` (create or replace), stamping ``last_modified`` unless told not to."""
        with self._lock:
            if customer.id in self._deleted_customers:
                raise KeyError(f"customer {customer.id} was deleted")
            stored = customer.copy()
            if touch:
                stored.last_modified = self.now()
            previous = self._customers.get(stored.id)
            if previous is not None:
                self._forget_keys(previous)
            if self.base.index_of(stored.id) is not None:
                # The base record stays derivable but is hidden behind its overlay copy; its
                # external and entity ids are found through the overlay maps from now on.
                self._hidden_customers.add(stored.id)
            self._customers[stored.id] = stored
            if stored.external_id:
                self._external_ids[stored.external_id] = stored.id
            self._entity_ids[stored.entity_id] = stored.id
            for line in stored.address_book:
                self._nkey_owner[line.nkey] = stored.id
            return stored.copy()

    def _forget_keys(self, customer: Customer) -> None:
        if customer.external_id and self._external_ids.get(customer.external_id) == customer.id:
            del self._external_ids[customer.external_id]
        if self._entity_ids.get(customer.entity_id) == customer.id:
            del self._entity_ids[customer.entity_id]
        for line in customer.address_book:
            self._nkey_owner.pop(line.nkey, None)

    def edit_customer(self, customer_id: int, **changes: Any) -> Customer:
        """Change fields of a customer "in NetSuite" (dataclass field names) and touch it."""
        with self._lock:
            current = self._load_customer(customer_id)
            if current is None:
                raise KeyError(f"customer {customer_id} does not exist")
            return self.save_customer(dataclasses.replace(current.copy(), **changes))

    def delete_customer(self, customer_id: int) -> None:
        with self._lock:
            current = self._load_customer(customer_id)
            if current is None:
                raise KeyError(f"customer {customer_id} does not exist")
            self._forget_keys(current)
            self._customers.pop(customer_id, None)
            self._deleted_customers.add(customer_id)
            if self.base.index_of(customer_id) is not None:
                self._hidden_customers.add(customer_id)
            self._deletions.append(DeletedRecord(customer_id, "customer", current.company_name, self.now()))

    def customer_of_nkey(self, nkey: int) -> int | None:
        """Which customer owns address subrecord ``nkey`` (base formula or overlay map)."""
        with self._lock:
            owner = self._nkey_owner.get(nkey)
            if owner is not None:
                return owner
            line_id = nkey - NKEY_OFFSET
            if 0 <= line_id < self.base.first_free_line_id:
                candidate = line_id // LINES_PER_CUSTOMER_ID
                if candidate not in self._hidden_customers and self.base.index_of(candidate) is not None:
                    return candidate
            return None

    @property
    def overlay_size(self) -> int:
        """How many records the overlay holds (memory grows with writes, not with the seed)."""
        with self._lock:
            return len(self._customers) + len(self._contacts) + len(self._deletions)

    # --- ordered scans for SuiteQL -------------------------------------------------------------

    def _customer_snapshot(self, *, copy: bool = True) -> tuple[list[tuple[SortKey, Customer]], set[int]]:
        with self._lock:
            overlay = sorted(
                ((c.last_modified, c.id), c.copy() if copy else c) for c in self._customers.values()
            )
            return overlay, set(self._hidden_customers)

    def scan_customers(
        self, after: SortKey | None = None, *, inclusive: bool = True, shared: bool = False
    ) -> Iterator[tuple[SortKey, Loader]]:
        """Customers ordered by ``(lastmodifieddate, id)`` from ``after`` on, loaded lazily.

        Yields ``(key, loader)``; calling ``loader()`` builds the record, so skipping rows (offset
        paging) costs no record generation. ``shared``: loaders return cached base records that
        the caller must not change (SuiteQL's read path); otherwise each load is a fresh object.
        """
        overlay, hidden = self._customer_snapshot(copy=not shared)
        start = 0 if after is None else self.base.first_index_after(after, inclusive=inclusive)
        pos = 0
        if after is not None:
            while pos < len(overlay) and (
                overlay[pos][0] < after or (not inclusive and overlay[pos][0] == after)
            ):
                pos += 1
        base = self.base
        load: Callable[[int], Any] = self._shared_customer if shared else base.customer
        for index in range(start, base.count):
            key = base.sort_key(index)
            while pos < len(overlay) and overlay[pos][0] < key:
                yield overlay[pos][0], partial(_same, overlay[pos][1])
                pos += 1
            if key[1] in hidden:
                continue
            yield key, partial(load, index)
        for key, customer in overlay[pos:]:
            yield key, partial(_same, customer)

    def _shared_customer(self, index: int) -> Customer:
        return self._base_shared(index)[0]

    def count_customers(self, after: SortKey | None = None, *, inclusive: bool = True) -> int:
        """How many customers ``scan_customers`` would yield, by arithmetic (no generation)."""
        overlay, hidden = self._customer_snapshot(copy=False)
        start = 0 if after is None else self.base.first_index_after(after, inclusive=inclusive)
        hidden_after = sum(
            1 for cid in hidden if (index := self.base.index_of(cid)) is not None and index >= start
        )
        if after is None:
            overlay_after = len(overlay)
        else:
            overlay_after = sum(1 for key, _ in overlay if key > after or (inclusive and key == after))
        return self.base.count - start - hidden_after + overlay_after

    def scan_deleted(
        self, after: SortKey | None = None, *, inclusive: bool = True
    ) -> Iterator[tuple[SortKey, Loader]]:
        """``deletedrecord`` rows ordered by ``(deleteddate, recordid)`` from ``after`` on."""
        with self._lock:
            runtime = sorted(((d.deleted_date, d.record_id), d) for d in self._deletions)
        start = 0 if after is None else self.base.first_deleted_after(after, inclusive=inclusive)
        pos = 0
        if after is not None:
            while pos < len(runtime) and (
                runtime[pos][0] < after or (not inclusive and runtime[pos][0] == after)
            ):
                pos += 1
        for j in range(start, self.base.deleted_count):
            record = self.base.deleted(j)
            key = (record.deleted_date, record.record_id)
            while pos < len(runtime) and runtime[pos][0] < key:
                yield runtime[pos][0], partial(_same, runtime[pos][1])
                pos += 1
            yield key, partial(_same, record)
        for key, record in runtime[pos:]:
            yield key, partial(_same, record)

    def count_deleted(self, after: SortKey | None = None, *, inclusive: bool = True) -> int:
        with self._lock:
            runtime = [(d.deleted_date, d.record_id) for d in self._deletions]
        start = 0 if after is None else self.base.first_deleted_after(after, inclusive=inclusive)
        if after is None:
            extra = len(runtime)
        else:
            extra = sum(1 for key in runtime if key > after or (inclusive and key == after))
        return self.base.deleted_count - start + extra

    # --- contacts ------------------------------------------------------------------------------

    def _load_contact(self, contact_id: int) -> Contact | None:
        if contact_id in self._deleted_contacts:
            return None
        stored = self._contacts.get(contact_id)
        if stored is not None:
            return stored
        return self.base.contact(contact_id)

    def get_contact(self, contact_id: int) -> Contact | None:
        with self._lock:
            found = self._load_contact(contact_id)
            return None if found is None else found.copy()

    def contact_id_by_external_id(self, external_id: str) -> int | None:
        with self._lock:
            return next((c.id for c in self._contacts.values() if c.external_id == external_id), None)

    def save_contact(self, contact: Contact, *, touch: bool = True) -> Contact:
        with self._lock:
            stored = contact.copy()
            if touch:
                stored.last_modified = self.now()
            self._contacts[stored.id] = stored
            return stored.copy()

    def edit_contact(self, contact_id: int, **changes: Any) -> Contact:
        with self._lock:
            current = self._load_contact(contact_id)
            if current is None:
                raise KeyError(f"contact {contact_id} does not exist")
            return self.save_contact(dataclasses.replace(current.copy(), **changes))

    def delete_contact(self, contact_id: int) -> None:
        with self._lock:
            current = self._load_contact(contact_id)
            if current is None:
                raise KeyError(f"contact {contact_id} does not exist")
            self._contacts.pop(contact_id, None)
            self._deleted_contacts.add(contact_id)
            self._deletions.append(DeletedRecord(contact_id, "contact", current.entity_id, self.now()))

    def contacts_of_customer(self, customer_id: int) -> list[Contact]:
        """Contacts whose company is ``customer_id`` (base contacts not overridden + overlay)."""
        with self._lock:
            found: dict[int, Contact] = {}
            index = self.base.index_of(customer_id)
            if index is not None:
                for contact in self.base.contacts_of(index):
                    if contact.id not in self._contacts and contact.id not in self._deleted_contacts:
                        found[contact.id] = contact
            for contact in self._contacts.values():
                if contact.company_id == customer_id:
                    found[contact.id] = contact.copy()
            return [found[key] for key in sorted(found)]

    def peek_contacts_of_customer(self, customer_id: int) -> list[Contact]:
        """:meth:`contacts_of_customer` without copies, for readers that never change them
        (SuiteQL); base contacts come from the cache shared with :meth:`peek_customer`."""
        index = self.base.index_of(customer_id)
        base = self._base_shared(index)[1] if index is not None else []  # generate outside the lock
        with self._lock:
            found: dict[int, Contact] = {
                c.id: c for c in base if c.id not in self._contacts and c.id not in self._deleted_contacts
            }
            for contact in self._contacts.values():
                if contact.company_id == customer_id:
                    found[contact.id] = contact
        return [found[key] for key in sorted(found)]

    def scan_contacts(self) -> Iterator[Contact]:
        """Every contact (slow on big seeds; SuiteQL uses it only without a company filter)."""
        for index in range(self.base.count):
            yield from self.contacts_of_customer(self.base.id_of(index))
        with self._lock:
            orphans = [
                c.copy()
                for c in self._contacts.values()
                if c.company_id is None or self.base.index_of(c.company_id) is None
            ]
        yield from sorted(orphans, key=lambda c: c.id)


def _same(value: Any) -> Any:
    return value
