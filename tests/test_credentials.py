"""An account without its credentials is never a silent dry run (issue 13): if anything asks
it to post (`crier run` refuses to start before that), the delivery waits, stopped on
credentials and naming the unset variables, and goes out once they are set."""

from __future__ import annotations

import dataclasses

from bot.config import Secret
from bot.models import DeliveryStatus
from tests.world import M_TOKEN, new_episode


def test_an_account_without_credentials_posts_nothing_and_loses_nothing(world):
    world.cycle()  # the first run: the back catalogue is known
    world.configure(masto={"secrets": {}, "missing_secrets": ("CRIER_MASTO_ACCESS_TOKEN",)})
    new_episode(world)
    _report, outcomes = world.cycle()
    by_account = {o.account: o for o in outcomes}
    assert by_account["x"].status == "sent"
    masto = by_account["masto"]
    assert masto.status == DeliveryStatus.PENDING.value  # waiting, not dry_run, not sent
    assert "CRIER_MASTO_ACCESS_TOKEN" in masto.error
    assert world.masto.statuses == []
    # the host sets the token: the same delivery goes out, once
    world.configure(masto={"secrets": {"access_token": Secret(M_TOKEN)},
                           "missing_secrets": ()})
    world.svc.wake_auth_stopped()
    world.drain()
    assert len(world.masto.statuses) == 1
    sent = [r for r in world.rows() if r.account == "masto"]
    assert [r.status for r in sent] == ["sent"]
    assert not any(dataclasses.asdict(a).get("dry_run") for a in world.settings.accounts)
