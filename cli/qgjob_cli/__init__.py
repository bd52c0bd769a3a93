"""qgjob's command-line client.

It talks to the qgjob API over HTTP only and imports nothing from the services: job
statuses and targets travel as the strings the server uses (spelled in vocabulary.py),
and a job record's `final` flag says when a job is finished.
"""
