"""A job that checks in, skips its next runs, and checks in again, with the real Python
SDK. The schedule is every three seconds with a one-second margin, so a test can see a
missed run without waiting minutes.

    SENTRY_DSN=... python3 cron_missed.py
"""

import os
import time

import sentry_sdk
from sentry_sdk.crons import capture_checkin

sentry_sdk.init(dsn=os.environ["SENTRY_DSN"], release="jobs@1.0", environment="production")

config = {
    "schedule": {"type": "interval", "value": 0.05, "unit": "minute"},
    "checkin_margin": 0.02,
    "max_runtime": 1,
    "timezone": "UTC",
}

run = capture_checkin(monitor_slug="quick-job", status="in_progress", monitor_config=config)
capture_checkin(monitor_slug="quick-job", check_in_id=run, status="ok", duration=0.01, monitor_config=config)
sentry_sdk.flush()
# The job does not run for two of its three-second slots, and is back for the next one.
time.sleep(8.7)
run = capture_checkin(monitor_slug="quick-job", status="in_progress", monitor_config=config)
capture_checkin(monitor_slug="quick-job", check_in_id=run, status="error", duration=0.02, monitor_config=config)
sentry_sdk.flush()
