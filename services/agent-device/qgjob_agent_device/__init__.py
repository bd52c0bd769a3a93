"""qgjob's device agent: the shared runtime (qgjob_agent) with the device plugin."""
