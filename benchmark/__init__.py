"""soundaq command line, leaderboard runs and performance scripts."""
