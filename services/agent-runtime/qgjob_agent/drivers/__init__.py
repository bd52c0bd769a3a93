"""Drivers: how an agent installs an app and runs a test (see base.Driver)."""
