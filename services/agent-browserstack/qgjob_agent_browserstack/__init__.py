"""qgjob's browserstack agent: the shared runtime (qgjob_agent) with the browserstack plugin."""
