-- LastFM: the longest listening sessions by plays, with their users, how long
-- each lasted, and how many of that user's top sessions it is.
SELECT
    rank,
    user_id,
    session_start,
    session_end,
    tracks,
    date_diff('minute', session_start, session_end) AS minutes,
    count(*) OVER (PARTITION BY user_id) AS user_top_sessions
FROM iceberg.gold.lastfm_top_sessions
ORDER BY rank;
