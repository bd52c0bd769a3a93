"""qgjob's shared contract.

Everything that crosses a process boundary is defined here exactly once: event types and
their envelope, the exchange and queue names, Redis key names, RQ queue names, job statuses
and targets, and the records stored in Redis. Services import names from here; they never
spell an event type or a key themselves.
"""
