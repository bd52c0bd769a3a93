from __future__ import annotations

from qgjob_scheduler.main import main

main()
