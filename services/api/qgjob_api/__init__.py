"""qgjob's HTTP API: the seed contract (/submit, /status) and /v1 (jobs, agents, health)."""
