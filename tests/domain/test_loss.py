"""The tier a lost customer had is the one before the run that lost it, even when both moved together."""
from datetime import date

from domain.evaluation import run_batch
from domain.importer import import_directory
from domain.loss import loss_episodes
from rules.compiler import compile_rules
from tests_support import GRAPH_FIXTURE

RECENCY_RULES = """tier recent if count(order, 90d) >= 1
tier old otherwise
status lost if no order 90d
status active otherwise
"""


def test_tier_before_is_the_level_held_before_the_loss(engine):
    import_directory(engine, GRAPH_FIXTURE)
    rules = compile_rules(RECENCY_RULES)
    run_batch(engine, rules, date(2024, 3, 15))  # every customer with an order since mid-December: recent, active
    run_batch(engine, rules, date(2024, 6, 30))  # no order since April: old and lost, in the same run
    episodes = {e.external_id: e for e in loss_episodes(engine)}
    moved = [e for e in episodes.values() if e.lost_on == date(2024, 6, 30)]
    assert moved, "the fixture must have customers lost in the second run"
    assert {e.tier_before for e in moved} == {"recent"}
    never_recent = [e for e in episodes.values() if e.lost_on is None]  # lost since their first evaluation
    assert never_recent and {e.tier_before for e in never_recent} == {"old"}
