"""Value domains of the public challenge generator and the shape of realistic mode:
columns, action types, countries, devices, subscriptions, and the mixes, shares and
rhythms realistic mode draws from. Constants only."""
from __future__ import annotations

import numpy as np

# --- value domains of the public challenge generator -------------------------
INTERACTION_COLUMNS = ["user_id", "timestamp", "action_type", "page_id", "duration_ms", "app_version"]
METADATA_COLUMNS = ["user_id", "join_date", "country", "device_type", "subscription_type"]
ACTION_TYPES = ["page_view", "edit", "create", "delete", "share"]
COUNTRIES = ["US", "UK", "CA", "AU", "DE", "FR", "JP", "IN", "BR", "MX"]
DEVICE_TYPES = ["iPhone", "iPad", "Android Phone", "Android Tablet", "Windows", "Mac"]
SUBSCRIPTION_TYPES = ["free", "basic", "premium", "enterprise"]
CHALLENGE_PAGE_IDS = 1_000_000
CHALLENGE_DURATION_MS = (100, 300_000)
CHALLENGE_APP_MAJORS = (5, 7)
# The challenge draws join dates from 2020-01-01 to 2023-12-31 around events of
# 2023: i.e. 1096 days before the first event day up to the last one.
JOIN_DAYS_BEFORE_START = 1096

# --- realistic-mode shape ------------------------------------------------------
# (the anomalies planted in it, their days and factors: anomalies.py)
HOT_USERS = 5
HOT_USER_EVENT_SHARE = 0.25
ZIPF_EXPONENT = 1.0
ZIPF_RANK_OFFSET = 10
MEAN_SESSION_EVENTS = 6.0
MEAN_INTRA_SESSION_GAP_S = 45.0
GAP_EQUAL_TS_SHARE = 0.02          # equal timestamps inside a session
GAP_EXACT_1800_SHARE = 0.002       # continues the session (boundary rule)
GAP_EXACT_1801_SHARE = 0.002       # starts a new session
HOURLY_RHYTHM = np.array([          # UTC hour -> relative activity
    0.35, 0.25, 0.18, 0.15, 0.15, 0.2, 0.35, 0.6, 0.85, 1.0, 1.05, 1.1,
    1.15, 1.2, 1.25, 1.2, 1.15, 1.15, 1.25, 1.4, 1.5, 1.35, 1.0, 0.6])
WEEKEND_FACTOR = 0.8
GROWTH_OVER_WINDOW = 0.3
ACTION_MIX = np.array([0.55, 0.25, 0.08, 0.05, 0.07])   # order of ACTION_TYPES
ACTION_MEDIAN_MS = np.array([0.0, 45_000, 20_000, 2_000, 5_000])  # page_view from latency model
DEVICE_MEDIAN_LATENCY_MS = np.array([900, 800, 1400, 1600, 1100, 700])  # order of DEVICE_TYPES
LONG_DURATION_SHARE = 0.002         # edits left open for 8-30 h: exercises the duration cap
COUNTRY_MIX = np.array([0.33, 0.09, 0.06, 0.04, 0.08, 0.06, 0.1, 0.12, 0.07, 0.05])
DEVICE_MIX = np.array([0.3, 0.25, 0.17, 0.06, 0.12, 0.1])
SUBSCRIPTION_MIX = np.array([0.6, 0.2, 0.15, 0.05])
META_MISSING_SHARE = 0.08           # active users without any metadata row
META_DUP_LATER_SHARE = 0.03         # second row with a later join_date
META_DUP_TIED_SHARE = 0.01          # second row with the same join_date
JOIN_DAYS_BEFORE_START_REALISTIC = 730
DEFAULT_DUPLICATE_SHARE = 0.001

SECONDS_PER_DAY = 86_400
