"""Sends an error full of secrets with the real Python SDK, its own scrubbing turned off,
so that only the server stands between the secrets and the database.

The secret values come from the environment, so they never appear in source lines that the
SDK sends as context (source code is not scrubbed, by Sentry or by Bugbane).
"""

import os

import sentry_sdk
from sentry_sdk.scrubber import EventScrubber

SECRETS = {k[len("SECRET_"):].lower(): v for k, v in os.environ.items() if k.startswith("SECRET_")}


def add_request(event, hint):
    event["request"] = {
        "url": "https://shop.example.com/checkout?id=7&access_token=" + SECRETS["query_token"],
        "method": "POST",
        "headers": {
            "Authorization": "Bearer " + SECRETS["bearer"],
            "Cookie": "sessionid=" + SECRETS["session"] + "; theme=dark",
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
        },
        "data": {"password": SECRETS["form_password"], "card_number": SECRETS["card"], "comment": "hello"},
    }
    return event


def charge(card, password, api_token):
    raise ValueError("payment declined")


sentry_sdk.init(
    dsn=os.environ["SENTRY_DSN"],
    send_default_pii=True,
    include_local_variables=True,
    event_scrubber=EventScrubber(denylist=[], pii_denylist=[]),
    before_send=add_request,
)
sentry_sdk.set_extra("note", "customer paid with " + SECRETS["card_in_text"] + " yesterday")
try:
    charge(SECRETS["card_local"], SECRETS["password"], SECRETS["api_token"])
except ValueError as e:
    sentry_sdk.capture_exception(e)
sentry_sdk.flush()
