"""RM-1: two real worker processes drain 1,000 queued messages; each is sent exactly once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from onetrip.db import utcnow
from onetrip.notify.models import Notification
from tests import racekit

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("ONETRIP_TEST_DATABASE_URL"),
                       reason="FOR UPDATE SKIP LOCKED needs PostgreSQL; SQLite has one writer "
                              "at a time, so two workers cannot race there"),
]

ONETRIP = str(Path(sys.executable).with_name("onetrip"))


def test_rm1_two_workers_send_each_of_1000_messages_exactly_once(race_engine: Engine) -> None:
    seed = racekit.seed(race_engine, patients=10)
    # Due a few seconds from now, so that both workers are polling when the race starts.
    due = utcnow() + timedelta(seconds=4)
    with Session(race_engine) as db:
        db.execute(insert(Notification), [
            {"patient_id": seed.patient_ids[i % 10], "channel": "sms",
             "template": "hour_before", "status": "queued", "attempts": 0,
             "variables": {"department": "心血管内科", "time": "12月14日 08:00",
                           "place": "门诊楼"},
             "send_at": due, "next_attempt_at": due, "dedupe_key": f"race:{i}",
             "last_error": "", "created_at": utcnow()} for i in range(1000)])
        db.commit()
    env = {**os.environ, "ONETRIP_DATABASE_URL": str(race_engine.info["url"]),
           "ONETRIP_LOG_LEVEL": "INFO", "ONETRIP_NOTIFY_SMS_CHANNEL": "console"}
    procs = [subprocess.Popen([ONETRIP, "notify", "worker", "--batch", "20", "--poll", "0.1",
                               "--stop-when-idle", "8"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    logs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _out, err in logs]
    per_worker = [re.findall(r"out_id=(onetrip-\d+)", err) for _out, err in logs]
    sends = Counter(out_id for sent in per_worker for out_id in sent)
    assert len(sends) == 1000 and set(sends.values()) == {1}
    assert all(per_worker), "both workers took part in the race"
    assert not any("1380000" in err for _out, err in logs)  # masked phones only
    with Session(race_engine) as db:
        assert db.scalar(select(func.count()).select_from(Notification)
                         .where(Notification.status == "sent")) == 1000
