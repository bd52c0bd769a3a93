"""qgjob's agent runtime, shared by every target.

One agent process = one device slot = one RQ SimpleWorker. It runs batches (one RQ job per
batch, `runtime.run_batch`), installs the batch's app version once, runs the tests through a
driver, and reports job, batch and heartbeat events over RabbitMQ. A target package
(qgjob_agent_emulator, ...) contributes a `TargetPlugin` and calls `worker.main(plugin)`.
"""
