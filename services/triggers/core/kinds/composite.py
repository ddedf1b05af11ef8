"""composite: other triggers firing at this scope or inside it, combined by rank.

The value is the members' combined rank (LEVEL_RANK: 0 resolved, 1 watch, 2 warning, 3
emergency): the lowest of their highest ranks for mode all, the highest for mode any.
"""

from __future__ import annotations

from schemas import LEVEL_RANK, AlertEvent

from ..evaluation import MAX_EVIDENCE, Evaluation
from ..rules import CompositeRule


def member_rank(member: AlertEvent) -> int:
    """What a member's transition counts for in its composites."""
    return LEVEL_RANK[member.level] if member.status == "firing" else 0


def evaluate(rule: CompositeRule, members: dict[str, dict[str, int]]) -> Evaluation:
    """`members`: member rule id → member scope key → rank, as the composite's scope holds them."""
    ranks = [max(members.get(m, {}).values(), default=0) for m in rule.members]
    value = float(min(ranks) if rule.mode == "all" else max(ranks))
    firing = sorted(f"{m}@{k}" for m in rule.members for k, r in members.get(m, {}).items() if r)
    return Evaluation(
        value,
        evidence=firing[:MAX_EVIDENCE],
        details={m: float(r) for m, r in zip(rule.members, ranks, strict=True)},
    )
