"""Config: every parameter of a run (what the command line sets), and the values
derived from them that several modules need."""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from datagen.domains import HOT_USER_EVENT_SHARE, HOT_USERS


@dataclasses.dataclass(frozen=True)
class Config:
    mode: str
    out: Path
    events: int
    users: int
    metadata_rows: int | None      # challenge only; realistic derives metadata from users
    start_date: dt.date
    days: int
    file_format: str
    layout: str
    metadata_layout: str
    seed: int
    malformed_share: float
    duplicate_share: float
    bad_batch: str | None
    chunk_rows: int
    hot_users: int = HOT_USERS                      # realistic only
    hot_user_share: float = HOT_USER_EVENT_SHARE    # realistic only: their events, together
    malformed_lines: bool = False                   # CSV only: LINE_FAULT_KINDS among the malformed rows

    @property
    def hot_user_count(self) -> int:
        return min(self.hot_users, max(1, self.users // 20))

    @property
    def line_ending(self) -> str:
        # Python's csv.writer (the challenge generator) ends lines with CRLF.
        return "\r\n" if self.mode == "challenge" else "\n"

    @property
    def id_space(self) -> int:
        return self.users if self.mode == "challenge" else max(1_000_000, self.users)
