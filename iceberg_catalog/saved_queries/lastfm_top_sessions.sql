-- LastFM: the longest listening sessions by plays, with their users and how
-- many of the top sessions each user has.
SELECT
    rank,
    user_id,
    session_start,
    session_end,
    tracks,
    count(*) OVER (PARTITION BY user_id) AS user_top_sessions
FROM iceberg.gold.lastfm_top_sessions
ORDER BY rank;
