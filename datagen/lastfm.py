"""LastFM-1K listening histories: `python -m datagen.lastfm --out FILE [--plays N]`.

Writes one file in the format of the LastFM-1K dump
(userid-timestamp-artid-artname-traid-traname.tsv): UTF-8, tab-separated, no
header, `\\n` line endings, six columns

    user_id      timestamp             artist_id (UUID or empty)  artist_name  track_id (UUID or empty)  track_name
    user_000001  2009-05-04T23:08:57Z  f1b1cf71-bd35-...          Deep Dish                              Sunday Morning

lines grouped by user (user_000001 first) and, within a user, by timestamp
DESCENDING, as in the dump. Also FILE.manifest.json: the one-line JSON summary
printed at the end (lines, malformed lines by kind, users, bytes, seconds, and
what was planted). Same arguments -> byte-identical file.

Choices
  catalogue  min(1.5M, plays/12) songs by min(100k, songs/15) artists, made once
             per run. A song's artist is drawn Zipf-like over artists (a few
             artists with a thousand songs, most with a handful). Names are
             built from a vocabulary mixing English words with accents (NFC and
             one NFD spelling, so two names can look alike and differ in bytes),
             CJK, Cyrillic, Greek, Hebrew, Arabic, emoji (flags and ZWJ
             sequences), quotes `"` and `'`, commas, backslashes and `&`; never
             a tab, CR, LF or other control character. 2% of songs get a common
             title ("Intro", "Untitled", ...), so many artists have a song of the
             same name. MusicBrainz ids are random UUIDv4s; 10% of songs and 3%
             of artists have none (empty field), so roughly 10% of lines have an
             empty track_id.
  users      --users users (user_000001...) with lognormal activity (sigma 1.4,
             one user at most ~1% of the plays): a few users with >100k plays,
             many with a few thousand, some with a handful or none. Each user is
             active in a window of the date range (most till near its end), has
             30-600 favourite songs (drawn from the catalogue's popularity, then
             played Zipf-like among themselves) making 20-70% of its plays, and
             otherwise draws songs Zipf-like (rank offset 50) from the whole
             catalogue. A user whose plays cannot fit in the range back to back
             (only with odd arguments: many plays, few users, few days) gets
             shorter tracks, and plays still too early are put at the first
             second of the range.
  sessions   plays come in listening sessions: lognormal lengths (median 9
             plays), 0.05% very long ones (800-6000 plays); consecutive plays a
             track length apart (lognormal around 225 s, 2-7 min; 4% skips of
             5-60 s; never above 1199 s); sessions separated by lognormal gaps
             (hours to weeks, at least 1202 s) scaled so the user's plays fill
             the window. Within a session 2-12% of plays repeat an earlier song.
  planted    inside sessions, per play: 0.1% exact duplicates of the line
             before (same user, timestamp, song), 0.05% plays of a different
             song at the same second as the play before, 0.05% gaps of exactly
             1200 s (continues a session whose gap is "more than 1200 s") and
             0.05% of exactly 1201 s (starts one). Planted plays are never next
             to each other, and never the first play of a generated session.
  malformed  exactly round(--malformed-share * plays) lines, at random
             positions, replace plays, the five kinds in equal numbers (+-1):
             5 columns (no track_id field), 7 columns (a stray tab in the track
             name), empty user_id, empty track_name, and a timestamp that does
             not parse (one of 2009-13-45T99:00:00Z, `2009-05-04 23:08:57`,
             `yesterday`, no `Z`, 29 February of a non-leap year, epoch seconds,
             empty). Each has exactly one fault, so its reject reason is the one
             of its kind whatever order the checks run in. 29 February of a
             non-leap year is there on purpose: the contract wants a real date,
             and lenient parsers roll it over to 1 March.

Streaming: users are generated one after the other, each in blocks of at most
1M plays with numpy (one random stream per (seed, user, block), so the content
does not depend on how lines are buffered), and written in batches of ~500k
lines built with pyarrow string kernels: 19M lines never sit in memory. The
file is written as FILE.partial and renamed when complete.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DEFAULT_FILE = "userid-timestamp-artid-artname-traid-traname.tsv"
DEFAULT_PLAYS = 19_150_868
DEFAULT_USERS = 992
COLUMNS = ["user_id", "timestamp", "artist_id", "artist_name", "track_id", "track_name"]
SECONDS_PER_DAY = 86_400

# one random stream per purpose (and per user / block below)
STREAM_CATALOGUE, STREAM_USERS, STREAM_SESSIONS, STREAM_PLAYS, STREAM_MALFORMED = 11, 12, 13, 14, 15

# --- catalogue ------------------------------------------------------------------
MAX_SONGS, MAX_ARTISTS = 1_500_000, 100_000
PLAYS_PER_SONG, SONGS_PER_ARTIST = 12, 15
MIN_SONGS, MIN_ARTISTS = 2_000, 200
SONG_ZIPF_OFFSET = 50.0          # p(rank r) ~ 1 / (r + 50): top song ~0.3% of global draws
FAVOURITE_ZIPF_OFFSET = 10.0     # a user's most played favourite: 2-7% of its favourite plays
ARTIST_ZIPF_OFFSET = 200.0       # songs per artist: top artist ~0.1% of the songs
NO_TRACK_MBID, NO_ARTIST_MBID = 0.10, 0.03
COMMON_TITLE_SHARE = 0.02
QUOTED_TITLE_SHARE = 0.003
TITLE_SUFFIX_SHARE = 0.08

# --- users and sessions -----------------------------------------------------------
USER_ACTIVITY_SIGMA = 1.4
MAX_USER_SHARE = 0.01
SESSION_MEDIAN_PLAYS, SESSION_SIGMA = 9.0, 1.0
LONG_SESSION_SHARE, LONG_SESSION_PLAYS = 0.0005, (800, 6000)
TRACK_MEDIAN_S, TRACK_SIGMA = 225.0, 0.3
SKIP_SHARE, SKIP_S = 0.04, (5, 60)
MAX_INTRA_GAP_S = 1199
MIN_SESSION_GAP_S = 1202
SESSION_GAP_MEDIAN_S, SESSION_GAP_SIGMA = 6 * 3600.0, 1.6
INTRA_SLACK = 1.1                 # room left for the plays' own span when fitting a window

# planted, per play inside a session (cumulative thresholds of one uniform draw)
PLANTED = [("equal_timestamps", 0.0005), ("exact_duplicates", 0.001), ("gaps_1200s", 0.0005),
           ("gaps_1201s", 0.0005)]

PLAY_BLOCK = 1_000_000            # plays of one user generated at once (part of what the seed fixes)
WRITE_LINES = 500_000             # lines formatted and written at once (does not change the bytes)

MALFORMED_KINDS = ["columns_5", "columns_7", "empty_user_id", "empty_track_name", "bad_timestamp"]
# the reject reason each kind is expected to get
MALFORMED_REASON = {"columns_5": "wrong_column_count", "columns_7": "wrong_column_count",
                    "empty_user_id": "empty_user_id", "empty_track_name": "empty_track_name",
                    "bad_timestamp": "bad_timestamp"}
BAD_TIMESTAMP_VARIANTS = ["month_13", "space_no_z", "word", "no_z", "feb_29_non_leap", "epoch_seconds", "empty"]

# --- vocabulary -----------------------------------------------------------------
WORDS = """love night day heart time world life dream light fire rain sun moon star sky blue black white red
gold silver city road home girl boy baby man woman soul mind body eyes hands kiss tears smile ghost angel
devil heaven hell river ocean sea wave storm wind summer winter spring autumn morning evening midnight
tonight tomorrow yesterday forever never always again alone together lost found broken falling rising
running dancing crying waiting burning shining fading wild free young old new last first little big
sweet bitter cold hot dark bright electric digital cosmic northern southern golden silent loud slow fast
high low deep far close inside outside under over beyond between away back down up out in on the of a
my your our no yes stay go come run fly fall dance sing cry wait burn shine fade breathe believe remember
forget hold let hide seek song songs music sound noise echo radio disco machine robot system signal
station satellite rocket planet galaxy universe paradise garden forest mountain desert island valley
street avenue highway bridge tower castle kingdom empire revolution freedom glory honor pride shame
secret mystery magic wonder miracle memory shadow mirror window door wall floor ceiling room house
party club beat rhythm groove funk soul jazz blues rock roll punk metal wave pop hop trance house dub
velvet crystal diamond stone iron steel glass paper plastic neon chrome cherry lemon sugar honey
coffee whiskey wine champagne cigarette candy medicine poison doctor teacher soldier sailor pilot
stranger lover friend enemy brother sister mother father children people nation army crowd
one two three four five seven ten hundred thousand million zero nothing everything something
Don't I'm It's Can't Won't You're We're Rock'n'Roll O'Brien Ain't L'amour D'accord Rendez-vous
Yes, Hello, Goodbye, Oh, "Heroes" "Live" 'Til 'Round Back\\Slash C:\\Music \\o/ AC\\DC Tom\\Jerry
café Café naïve Über über Mañana señorita corazón niño Ñandú Été L'Été Ça déjà-vu fiancée
Øresund Smørrebrød Björk-ish Sigur Rós Motörhead-ish Mötley Straße Grüße Zürich Kraków Łódź
Dvořák Škoda İstanbul ÇÖL Ærø Åsa São Paulo João Coração Saudade
東京 夜空 桜 さくら ありがとう 愛してる 音楽 北京 上海 月亮 你好 사랑 안녕 서울 노래
Москва Любовь Звезда Ночь Αθήνα Αγάπη שלום אהבה مرحبا حب नमस्ते संगीत สวัสดี
🎸 🔥 ❤️ 🎵 🌙 ⭐ 🇫🇷 🇯🇵 👩‍🎤 🤘🏽 ♥ ☮ ∞ ½ № ™ ©
""".split()
# names mix lowercase and Capitalised spellings of the same words
WORDS += [w.capitalize() for w in WORDS if w.isascii() and w.isalpha() and w.islower()]
# `Café` spelled with a combining accent (NFD): looks like `Café`, differs in bytes
WORDS.append("Cafe\u0301")
COMMON_TITLES = ["Intro", "Outro", "Untitled", "Interlude", "Home", "Hallelujah", "Summertime",
                 "Yesterday", "Angel", "Forever", "Stay", "Hurt", "Creep", "Tonight", "Track 1",
                 "Hidden Track", "Crazy", "Sunday Morning", "Silent Night", "Intro (Live)"]
TITLE_SUFFIXES = [" (Live)", " (Remix)", " - Remastered", " (feat. Ana Ñúñez)", " (Acoustic)", " [Bonus Track]",
                  " (Radio Edit)", ", Pt. 2", " (Demo)", ' ("Single" Version)', " (Live at Café Tacvba)",
                  " (12\" Mix)", " - 2004 Digital Remaster", " (Версия)", " (ライブ)"]
ARTIST_PREFIXES = ["", "The ", "DJ ", "Los ", "Les ", "MC ", "Die ", "Dr. "]
ARTIST_PREFIX_P = [0.74, 0.14, 0.03, 0.02, 0.02, 0.02, 0.02, 0.01]
ARTIST_SUFFIXES = ["", " & The Band", " Trio", " Orchestra", " Quartet", "!!!", " feat. Ñ", " Experience", " & Co."]
ARTIST_SUFFIX_P = [0.86, 0.03, 0.02, 0.02, 0.02, 0.01, 0.01, 0.02, 0.01]


# =============================================================================
# arguments
# =============================================================================
@dataclass(frozen=True)
class Config:
    out: Path
    plays: int = DEFAULT_PLAYS
    users: int = DEFAULT_USERS
    seed: int = 7
    malformed_share: float = 0.001
    start_date: dt.date = dt.date(2005, 2, 14)
    end_date: dt.date = dt.date(2009, 6, 19)

    @property
    def first_second(self) -> int:     # epoch seconds of start_date 00:00:00 UTC
        return (self.start_date - dt.date(1970, 1, 1)).days * SECONDS_PER_DAY

    @property
    def last_second(self) -> int:      # epoch seconds of end_date 23:59:59 UTC
        return (self.end_date - dt.date(1970, 1, 1)).days * SECONDS_PER_DAY + SECONDS_PER_DAY - 1


def parse_args(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(prog="python -m datagen.lastfm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help=f"the file to write (the dump's name: {DEFAULT_FILE})")
    p.add_argument("--plays", type=int, default=DEFAULT_PLAYS,
                   help=f"lines, malformed ones included (default {DEFAULT_PLAYS:,}, the dump's count)")
    p.add_argument("--users", type=int, default=DEFAULT_USERS, help=f"users (default {DEFAULT_USERS})")
    p.add_argument("--seed", type=int, default=7, help="same arguments + seed = byte-identical file (default 7)")
    p.add_argument("--malformed-share", type=float, default=0.001, help="share of malformed lines (default 0.001)")
    p.add_argument("--start-date", type=dt.date.fromisoformat, default=dt.date(2005, 2, 14),
                   help="first day of plays, YYYY-MM-DD (default 2005-02-14)")
    p.add_argument("--end-date", type=dt.date.fromisoformat, default=dt.date(2009, 6, 19),
                   help="last day of plays, inclusive (default 2009-06-19)")
    a = p.parse_args(argv)
    cfg = Config(a.out, a.plays, a.users, a.seed, a.malformed_share, a.start_date, a.end_date)
    problems = [msg for bad, msg in [
        (cfg.plays < 0, f"--plays must be >= 0, got {cfg.plays}"),
        (not 1 <= cfg.users <= 999_999, f"--users must be in [1, 999999], got {cfg.users}"),
        (not 0 <= cfg.malformed_share < 1, f"--malformed-share must be in [0, 1), got {cfg.malformed_share}"),
        (cfg.end_date < cfg.start_date, "--end-date must not be before --start-date"),
        (cfg.start_date.year < 1971 or cfg.end_date.year > 9999, "dates must be in 1971..9999"),
    ] if bad]
    if problems:
        p.error("; ".join(problems))
    return cfg


# =============================================================================
# strings, vectorised
# =============================================================================
def uuid_strings(rng: np.random.Generator, n: int) -> pa.Array:
    """n random UUIDv4 strings (lowercase, 8-4-4-4-12), formatted with numpy."""
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hex_pairs = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), np.uint8).reshape(256, 2)
    digits = hex_pairs[raw].reshape(n, 32)
    text = np.full((n, 36), ord("-"), np.uint8)
    at = np.r_[0:8, 9:13, 14:18, 19:23, 24:36]
    text[:, at] = digits
    offsets = np.arange(0, 36 * n + 1, 36, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(text.tobytes())])


def word_names(rng: np.random.Generator, n: int, words: pa.Array, counts_p: list[float]) -> pa.Array:
    """n names of 1..len(counts_p) words joined by spaces."""
    picks = [words.take(pa.array(rng.integers(0, len(words), n))) for _ in counts_p]
    joined = [picks[0]] + [pc.binary_join_element_wise(*picks[:k], " ") for k in range(2, len(counts_p) + 1)]
    count = rng.choice(len(counts_p), n, p=counts_p)
    return pc.choose(pa.array(count.astype(np.int8)), *joined)


def pick(rng: np.random.Generator, values: list[str], p: list[float], n: int) -> pa.Array:
    return pa.array(values).take(pa.array(rng.choice(len(values), n, p=np.array(p) / sum(p))))


def where(mask: np.ndarray, yes: pa.Array, no: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), yes, no)


@dataclass
class Catalogue:
    artist_of_song: np.ndarray   # song -> artist
    song_name: pa.Array
    song_mbid: pa.Array          # '' when none
    artist_name: pa.Array
    artist_mbid: pa.Array
    no_track_mbid: np.ndarray    # song -> bool

    @property
    def songs(self) -> int:
        return len(self.artist_of_song)


def build_catalogue(cfg: Config) -> Catalogue:
    rng = np.random.default_rng([cfg.seed, STREAM_CATALOGUE])
    songs = int(np.clip(cfg.plays // PLAYS_PER_SONG, MIN_SONGS, MAX_SONGS))
    artists = int(np.clip(songs // SONGS_PER_ARTIST, MIN_ARTISTS, MAX_ARTISTS))
    words = pa.array(WORDS)

    names = word_names(rng, artists, words, [0.05, 0.6, 0.35])
    names = pc.binary_join_element_wise(pick(rng, ARTIST_PREFIXES, ARTIST_PREFIX_P, artists), names,
                                        pick(rng, ARTIST_SUFFIXES, ARTIST_SUFFIX_P, artists), "")
    artist_mbid = where(rng.random(artists) < NO_ARTIST_MBID, pa.scalar(""), uuid_strings(rng, artists))

    titles = word_names(rng, songs, words, [0.25, 0.4, 0.22, 0.13])
    suffix = where(rng.random(songs) < TITLE_SUFFIX_SHARE,
                   pa.array(TITLE_SUFFIXES).take(pa.array(rng.integers(0, len(TITLE_SUFFIXES), songs))),
                   pa.scalar(""))
    titles = pc.binary_join_element_wise(titles, suffix, "")
    quoted = rng.random(songs) < QUOTED_TITLE_SHARE
    titles = where(quoted, pc.binary_join_element_wise(pa.scalar('"'), titles, pa.scalar('"'), ""), titles)
    common = rng.random(songs) < COMMON_TITLE_SHARE
    titles = where(common, pa.array(COMMON_TITLES).take(pa.array(rng.integers(0, len(COMMON_TITLES), songs))),
                   titles)
    no_track_mbid = rng.random(songs) < NO_TRACK_MBID
    song_mbid = where(no_track_mbid, pa.scalar(""), uuid_strings(rng, songs))
    artist_of_song = zipf_ranks(rng, songs, artists, ARTIST_ZIPF_OFFSET).astype(np.int32)
    return Catalogue(artist_of_song, titles, song_mbid, names, artist_mbid, no_track_mbid)


def zipf_ranks(rng: np.random.Generator, n: int, size: int, offset: float) -> np.ndarray:
    """n ranks in [0, size), p(r) ~ 1 / (r + offset) (continuous inverse CDF, floored)."""
    x = offset * np.expm1(rng.random(n) * np.log1p(size / offset))
    return np.minimum(x.astype(np.int64), size - 1)


class Clock:
    """Epoch seconds -> `YYYY-MM-DDTHH:MM:SSZ` by table lookup (dates x times of day)."""

    def __init__(self, cfg: Config):
        self.first_day = cfg.first_second // SECONDS_PER_DAY
        days = cfg.last_second // SECONDS_PER_DAY - self.first_day + 1
        self.dates = pa.array([(cfg.start_date + dt.timedelta(days=i)).isoformat() for i in range(days)])
        self.times = pa.array([f"{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)])

    def iso(self, seconds: np.ndarray) -> pa.Array:
        day, second = np.divmod(seconds, SECONDS_PER_DAY)
        return pc.binary_join_element_wise(self.dates.take(pa.array(day - self.first_day)),
                                           self.times.take(pa.array(second)), "T")


# =============================================================================
# users, sessions, plays
# =============================================================================
def plays_per_user(cfg: Config) -> np.ndarray:
    rng = np.random.default_rng([cfg.seed, STREAM_USERS])
    weight = rng.lognormal(0.0, USER_ACTIVITY_SIGMA, cfg.users)
    cap = max(MAX_USER_SHARE, 2.0 / cfg.users)
    for _ in range(50):             # cap the heaviest users, keep the total
        weight = np.minimum(weight / weight.sum(), cap)
    return rng.multinomial(cfg.plays, weight / weight.sum())


def session_lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    """Session sizes (lognormal, a few very long) summing to exactly n (the last is cut)."""
    parts, total = [], 0
    while total < n:
        m = int((n - total) / 12) + 16
        lengths = np.maximum(1, np.rint(rng.lognormal(np.log(SESSION_MEDIAN_PLAYS), SESSION_SIGMA, m))).astype(np.int64)
        long = rng.random(m) < LONG_SESSION_SHARE
        lengths[long] = np.exp(rng.uniform(*np.log(LONG_SESSION_PLAYS), long.sum())).astype(np.int64)
        parts.append(lengths)
        total += int(lengths.sum())
    lengths = np.concatenate(parts)
    ends = np.cumsum(lengths)
    last = int(np.searchsorted(ends, n))
    lengths = lengths[: last + 1].copy()
    lengths[-1] -= ends[last] - n
    return lengths


MEAN_INTRA_GAP_S = ((1 - SKIP_SHARE) * TRACK_MEDIAN_S * np.exp(TRACK_SIGMA ** 2 / 2) + SKIP_SHARE * np.mean(SKIP_S))


class UserPlays:
    """One user's plays, newest first, in blocks: (epoch seconds, song) per block."""

    def __init__(self, cfg: Config, cat: Catalogue, user: int, n: int):
        self.cfg, self.cat, self.user, self.n = cfg, cat, user, n
        rng = np.random.default_rng([cfg.seed, STREAM_SESSIONS, user])
        lengths = session_lengths(rng, n)
        self.ends = np.cumsum(lengths)            # sessions in generation order (newest first)
        self.starts = self.ends - lengths
        sessions = len(lengths)
        self.long_sessions = int((lengths >= LONG_SESSION_PLAYS[0]).sum())

        # fit the user's plays into a window of the date range
        span = cfg.last_second - cfg.first_second
        intra = n * MEAN_INTRA_GAP_S * INTRA_SLACK + 20 * MAX_INTRA_GAP_S
        min_inter = (sessions - 1) * MIN_SESSION_GAP_S
        # a user with more plays than the range can hold back to back plays shorter tracks
        self.squeeze = min(1.0, max(0.02, (0.9 * span - min_inter) / intra)) if intra + min_inter > span else 1.0
        intra *= self.squeeze
        share = rng.uniform(0.7, 1.0) if rng.random() < 0.4 else rng.uniform(0.05, 0.7)
        window = min(span, max(share * span, 1.3 * (intra + min_inter)))
        self.newest = cfg.last_second - int(rng.random() ** 3 * (span - window))
        raw = rng.lognormal(np.log(SESSION_GAP_MEDIAN_S), SESSION_GAP_SIGMA, sessions)
        raw[0] = 0.0
        budget = max(0.0, window - intra - min_inter)
        scale = budget / raw.sum() if raw.sum() > 0 else 0.0
        self.session_gap = np.where(np.arange(sessions) > 0, MIN_SESSION_GAP_S + np.floor(raw * scale), 0).astype(np.int64)

        favourites = rng.integers(30, 600)
        self.favourites = zipf_ranks(rng, favourites, cat.songs, SONG_ZIPF_OFFSET)   # in no particular order
        self.p_favourite = rng.uniform(0.2, 0.7)
        self.p_repeat = rng.uniform(0.02, 0.12)
        self.planted = dict.fromkeys([k for k, _ in PLANTED], 0)

    def blocks(self):
        clock = self.newest
        for block, p0 in enumerate(range(0, self.n, PLAY_BLOCK)):
            p1 = min(self.n, p0 + PLAY_BLOCK)
            seconds, songs = self._block(np.random.default_rng([self.cfg.seed, STREAM_PLAYS, self.user, block]),
                                         p0, p1, clock)
            clock = int(seconds[-1])
            yield np.maximum(seconds, self.cfg.first_second), songs

    def _block(self, rng: np.random.Generator, p0: int, p1: int, clock: int):
        n, cat = p1 - p0, self.cat
        k = np.arange(p0, p1)
        session = np.searchsorted(self.ends, k, side="right")
        first = k == self.starts[session]

        # the gap before each play (to the newer play before it in the file)
        gap = rng.lognormal(np.log(TRACK_MEDIAN_S), TRACK_SIGMA, n)
        skip = rng.random(n) < SKIP_SHARE
        gap[skip] = rng.uniform(*SKIP_S, skip.sum())
        gap = np.clip(np.rint(gap * self.squeeze), 1, MAX_INTRA_GAP_S).astype(np.int64)
        gap[first] = self.session_gap[session[first]]

        # songs: favourites, the catalogue's long tail, repeats within the session
        favourite = rng.random(n) < self.p_favourite
        song = zipf_ranks(rng, n, cat.songs, SONG_ZIPF_OFFSET)
        fav_pick = zipf_ranks(rng, n, len(self.favourites), FAVOURITE_ZIPF_OFFSET)
        song = np.where(favourite, self.favourites[fav_pick], song)
        lo = np.maximum(self.starts[session], p0) - p0
        hi = np.minimum(self.ends[session], p1) - p0
        source = lo + (rng.random(n) * (hi - lo)).astype(np.int64)
        repeat = rng.random(n) < self.p_repeat
        song = np.where(repeat, song[source], song)

        # planted plays: never a session's first play, the block's first, or next to another
        draw = rng.random(n)
        thresholds = np.cumsum([share for _, share in PLANTED])
        kind = np.searchsorted(thresholds, draw, side="right")      # len(PLANTED) = none
        kind[first] = len(PLANTED)
        kind[0] = len(PLANTED)
        planted = kind < len(PLANTED)
        kind[1:][planted[1:] & planted[:-1]] = len(PLANTED)
        for index, (name, _) in enumerate(PLANTED):
            at = np.flatnonzero(kind == index)
            self.planted[name] += len(at)
            if name == "equal_timestamps":
                gap[at] = 0
                same = song[at] == song[at - 1]
                song[at[same]] = (song[at[same]] + 1) % cat.songs
            elif name == "exact_duplicates":
                gap[at] = 0
                song[at] = song[at - 1]
            else:
                gap[at] = 1200 if name == "gaps_1200s" else 1201
        if p0 == 0:
            gap[0] = 0
        return clock - np.cumsum(gap), song.astype(np.int64)


# =============================================================================
# lines
# =============================================================================
def malformed_line(kind: str, variant: str, f: list[str]) -> str:
    if kind == "columns_5":
        f = f[:4] + f[5:]                       # the track_id field is missing
    elif kind == "columns_7":
        f = f[:5] + [f[5], "(Live)"]            # a stray tab in the track name
    elif kind == "empty_user_id":
        f = [""] + f[1:]
    elif kind == "empty_track_name":
        f = f[:5] + [""]
    else:
        ts = f[1]
        bad = {"month_13": "2009-13-45T99:00:00Z", "space_no_z": f"{ts[:10]} {ts[11:19]}", "word": "yesterday",
               "no_z": ts[:19], "feb_29_non_leap": f"{2007 if int(ts[:4]) % 4 == 0 else ts[:4]}-02-29{ts[10:]}",
               "epoch_seconds": str(int(dt.datetime.fromisoformat(ts[:19]).replace(tzinfo=dt.timezone.utc).timestamp())),
               "empty": ""}[variant]
        f = [f[0], bad] + f[2:]
    return "\t".join(f)


class Writer:
    """Buffers (user, seconds, song) blocks and writes them as lines, malformed ones replaced."""

    def __init__(self, cfg: Config, cat: Catalogue, handle):
        self.cfg, self.cat, self.handle = cfg, cat, handle
        self.clock = Clock(cfg)
        self.user_ids = pa.array([f"user_{u:06d}" for u in range(1, cfg.users + 1)])
        rng = np.random.default_rng([cfg.seed, STREAM_MALFORMED])
        count = int(round(cfg.malformed_share * cfg.plays))
        self.bad_at = np.sort(rng.choice(cfg.plays, count, replace=False)) if count else np.empty(0, np.int64)
        self.bad_kind = rng.permutation(np.arange(count) % len(MALFORMED_KINDS))
        self.bad_variant = rng.integers(0, len(BAD_TIMESTAMP_VARIANTS), count)
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.pending_lines = 0
        self.written = 0
        self.bytes = 0
        self.malformed = dict.fromkeys(MALFORMED_KINDS, 0)
        self.bad_timestamps = dict.fromkeys(BAD_TIMESTAMP_VARIANTS, 0)
        self.empty_track_id = self.empty_artist_id = 0
        self.no_artist_mbid = np.asarray(pc.equal(cat.artist_mbid, "").to_numpy(zero_copy_only=False))

    def add(self, user: int, seconds: np.ndarray, songs: np.ndarray) -> None:
        self.pending.append((np.full(len(seconds), user, np.int32), seconds, songs))
        self.pending_lines += len(seconds)
        if self.pending_lines >= WRITE_LINES:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        user, seconds, song = (np.concatenate(x) for x in zip(*self.pending))
        self.pending, self.pending_lines = [], 0
        cat, n = self.cat, len(user)
        artist = cat.artist_of_song[song]
        fields = [self.user_ids.take(pa.array(user)), self.clock.iso(seconds),
                  cat.artist_mbid.take(pa.array(artist)), cat.artist_name.take(pa.array(artist)),
                  cat.song_mbid.take(pa.array(song)), cat.song_name.take(pa.array(song))]
        lines = pc.binary_join_element_wise(*fields, "\t")

        lo, hi = np.searchsorted(self.bad_at, [self.written, self.written + n])
        good = np.ones(n, bool)
        if hi > lo:
            local = self.bad_at[lo:hi] - self.written
            good[local] = False
            rows = [[f[i].as_py() for f in fields] for i in local.tolist()]
            bad = []
            for row, kind, variant in zip(rows, self.bad_kind[lo:hi], self.bad_variant[lo:hi]):
                name, variant_name = MALFORMED_KINDS[kind], BAD_TIMESTAMP_VARIANTS[variant]
                self.malformed[name] += 1
                if name == "bad_timestamp":
                    self.bad_timestamps[variant_name] += 1
                bad.append(malformed_line(name, variant_name, row))
            lines = pc.replace_with_mask(lines, pa.array(~good), pa.array(bad, pa.string()))
        self.empty_track_id += int(cat.no_track_mbid[song][good].sum())
        self.empty_artist_id += int(self.no_artist_mbid[artist][good].sum())

        lines = pc.binary_join_element_wise(lines, pa.scalar(""), "\n")
        offsets = np.frombuffer(lines.buffers()[1], np.int32, n + 1, lines.offset * 4)
        data = memoryview(lines.buffers()[2])[offsets[0]:offsets[n]]
        self.handle.write(data)
        self.written += n
        self.bytes += len(data)


def run(cfg: Config) -> dict:
    began = time.perf_counter()
    cat = build_catalogue(cfg)
    per_user = plays_per_user(cfg)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    planted = dict.fromkeys([k for k, _ in PLANTED], 0)
    sessions = long_sessions = 0
    with open(partial, "wb") as handle:
        writer = Writer(cfg, cat, handle)
        for user, n in enumerate(per_user.tolist()):
            if not n:
                continue
            plays = UserPlays(cfg, cat, user, n)
            for seconds, songs in plays.blocks():
                writer.add(user, seconds, songs)
            sessions += len(plays.ends)
            long_sessions += plays.long_sessions
            for k, v in plays.planted.items():
                planted[k] += v
        writer.flush()
    os.replace(partial, out)
    expected = {}
    for kind, count in writer.malformed.items():
        expected[MALFORMED_REASON[kind]] = expected.get(MALFORMED_REASON[kind], 0) + count
    summary = {
        "file": str(out), "lines": writer.written, "bytes": writer.bytes,
        "malformed": writer.malformed, "malformed_total": sum(writer.malformed.values()),
        "expected_rejected_by_reason": expected, "bad_timestamp_variants": writer.bad_timestamps,
        "users": cfg.users, "users_with_lines": int((per_user > 0).sum()), "max_user_lines": int(per_user.max(initial=0)),
        "songs_in_catalogue": cat.songs, "artists_in_catalogue": len(cat.artist_name),
        "generated_sessions": sessions, "long_sessions": long_sessions,
        "planted": planted, "planted_note": "counted before malformed lines replaced some plays",
        "empty_track_id_lines": writer.empty_track_id, "empty_artist_id_lines": writer.empty_artist_id,
        "args": {"plays": cfg.plays, "users": cfg.users, "seed": cfg.seed, "malformed_share": cfg.malformed_share,
                 "start_date": cfg.start_date.isoformat(), "end_date": cfg.end_date.isoformat()},
        "seconds": round(time.perf_counter() - began, 2),
    }
    line = json.dumps(summary, sort_keys=True, ensure_ascii=False)
    Path(str(out) + ".manifest.json").write_text(line + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    summary = run(parse_args(argv))
    print(json.dumps(summary, sort_keys=True, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
