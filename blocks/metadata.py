"""Typed metadata carried in button values and modal `private_metadata` (validated both ways)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_BUTTON_VALUE = 2000
MAX_PRIVATE_METADATA = 3000


class MetadataError(ValueError):
    """A button value or private_metadata we did not write (or that was tampered with)."""


class _Meta(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def dump(self) -> str:
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def load(cls, raw: str | None) -> _Meta:
        try:
            return cls.model_validate_json(raw or "")
        except ValidationError as exc:
            raise MetadataError(f"unreadable {cls.__name__}: {raw!r:.80}") from exc


class ApplicationRef(_Meta):
    """Which application a button or modal is about."""

    a: int = Field(ge=1, description="application id")

    @property
    def application_id(self) -> int:
        return self.a


class DecisionModalMeta(_Meta):
    """What a decision modal needs back on submission: the application, and whether a manager acts."""

    a: int = Field(ge=1)
    m: bool = Field(False, description="opened from a manager's request")

    @property
    def application_id(self) -> int:
        return self.a


class SyncRef(_Meta):
    """Which sync request a button is about."""

    s: int = Field(ge=1)


class PickMeta(_Meta):
    """The pick modal: the application and NetSuite's values as the analyst saw them (fingerprints)."""

    a: int = Field(ge=1)
    seen: dict[str, str]


def load_sync_ref(raw: str | None) -> SyncRef:
    ref = SyncRef.load(raw)
    assert isinstance(ref, SyncRef)
    return ref


def load_pick(raw: str | None) -> PickMeta:
    meta = PickMeta.load(raw)
    assert isinstance(meta, PickMeta)
    return meta


def load_ref(raw: str | None) -> ApplicationRef:
    ref = ApplicationRef.load(raw)
    assert isinstance(ref, ApplicationRef)
    return ref


def load_modal(raw: str | None) -> DecisionModalMeta:
    meta = DecisionModalMeta.load(raw)
    assert isinstance(meta, DecisionModalMeta)
    return meta
