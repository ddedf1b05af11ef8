"""How a worker stops itself on purpose, so its supervisor restarts it from the last commit.

70: a Faust agent or a batch stage failed unexpectedly; 75: no progress with messages waiting
(stall watchdog); 76: a stream kept skipping offsets (continuity guard); 78 (sysexits' EX_CONFIG):
the configuration was refused at start - restarting repeats it, so supervisors must not restart
on it. See README, Monitoring.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

EXIT_FAILED = 70
EXIT_STALLED = 75
EXIT_GAP = 76
EXIT_CONFIG = 78


def stop_worker(code: int) -> NoReturn:
    """Flush the logs (the reason was just logged) and leave at once, without Faust's shutdown."""
    logging.shutdown()
    sys.stderr.flush()
    os._exit(code)
