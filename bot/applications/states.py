"""The application state machine: which status may follow which.

Transitions are applied by `ApplicationRepository.transition` (a conditional UPDATE), so that double clicks,
Slack retries and two analysts at once give exactly one decision.
"""

from __future__ import annotations

from storage.models import ApplicationStatus as S

TRANSITIONS: dict[S, frozenset[S]] = {
    S.SUBMITTED: frozenset({S.AWAITING_MANAGER, S.APPROVED, S.REJECTED, S.WITHDRAWN}),
    S.AWAITING_MANAGER: frozenset({S.APPROVED, S.REJECTED, S.SUBMITTED, S.WITHDRAWN}),
    S.APPROVED: frozenset(),
    S.REJECTED: frozenset(),
    S.WITHDRAWN: frozenset(),
}
OPEN_STATES = frozenset({S.SUBMITTED, S.AWAITING_MANAGER})
FINAL_STATES = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


class IllegalTransition(ValueError):
    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(f"an application that is {current} cannot become {wanted}")
        self.current = current
        self.wanted = wanted


def check(current: str, wanted: str) -> None:
    if S(wanted) not in TRANSITIONS[S(current)]:
        raise IllegalTransition(current, wanted)
