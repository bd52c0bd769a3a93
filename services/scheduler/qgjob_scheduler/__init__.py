"""qgjob's scheduler.

Consumes every qgjob event, keeps pending jobs grouped per (target, app_version_id) in Redis,
applies agents' reports to job and agent records, and hands a batch of ONE group to an agent
only when that agent is free, as one RQ job on the agent's own queue.
"""
