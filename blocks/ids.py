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
    LINK = "netsuite.link"
    LINK_MODE = "netsuite.link_mode"
    LINK_CUSTOMER = "netsuite.link_customer"
    LINK_CONFIRM_NEW = "netsuite.link_confirm_new"
    SYNC_FIELDS = "netsuite.sync_fields"
    SYNC_WHEN = "netsuite.sync_when"
    SYNC_RUN_NOW = "netsuite.sync_run_now"
    SYNC_CANCEL = "netsuite.sync_cancel"
    SYNC_RETRY = "netsuite.sync_retry"
    SYNC_REVIEW = "netsuite.sync_review"


class BlockId(enum.StrEnum):
    ACTIONS = "application.actions"
    TERMS = "decision.terms"
    CREDIT_LIMIT = "decision.credit_limit"
    NOTE = "decision.note"
    REASON = "decision.reason"
    LINK_MODE = "netsuite.link_mode"
    LINK_CUSTOMER = "netsuite.link_customer"
    LINK_CONFIRM_NEW = "netsuite.link_confirm_new"
    SYNC_FIELDS = "netsuite.sync_fields"
    SYNC_WHEN = "netsuite.sync_when"


class CallbackId(enum.StrEnum):
    APPROVE = "application.approve_modal"
    REJECT = "application.reject_modal"
    DETAILS = "application.details_modal"
    LINK = "netsuite.link_modal"
    PICK = "netsuite.pick_modal"
