-- LastFM: the songs played most within the longest listening sessions
-- (gold.lastfm_top_songs, written by the lastfm_sessions DAG), in rank order.
SELECT rank, artist_name, track_name, plays
FROM iceberg.gold.lastfm_top_songs
ORDER BY rank;
