"""Every action id, block id and callback id the app uses, in one place (handlers route on these)."""

from __future__ import annotations

import enum


class ActionId(enum.StrEnum):
    APPROVE = "application.approve"
    REJECT = "application.reject"
    DETAILS = "application.details"
    MANAGER_CONFIRM = "application.manager_confirm"
    MANAGER_REJECT = "application.manager_reject"
    TERMS = "decision.terms"
    CREDIT_LIMIT = "decision.credit_limit"
    NOTE = "decision.note"
    REASON = "decision.reason"


class BlockId(enum.StrEnum):
    ACTIONS = "application.actions"
    TERMS = "decision.terms"
    CREDIT_LIMIT = "decision.credit_limit"
    NOTE = "decision.note"
    REASON = "decision.reason"


class CallbackId(enum.StrEnum):
    APPROVE = "application.approve_modal"
    REJECT = "application.reject_modal"
    DETAILS = "application.details_modal"
