"""qgjob's emulator agent: the shared runtime (qgjob_agent) with the emulator plugin."""
