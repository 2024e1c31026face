"""Commands to every sidecar of a monitor (``P:commands``), read by ``redis_sync`` every second.

One command exists: ``adopt`` (``driftwatch ack --adopt``, written by the operator) -- make the
current regime the baseline of the Drifting streams (of one feature, or all): ``Engine.adopt`` on the
engine thread, and the pinned baseline reservoirs of those streams start over. A sidecar reads the
commands written since the last it read; at start, those of the last ``START_LOOKBACK`` seconds (a
pod that restarts right after a command still follows it; an older one is history).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from driftwatch.detect import Engine
from driftwatch.sidecar.reservoirs import Reservoirs
from driftwatch.sidecar.store import Store
from driftwatch.sidecar.worker import EngineWorker

log = logging.getLogger("driftwatch.sidecar")
START_LOOKBACK = 60.0


class Commands:
    def __init__(self, store: Store, worker: EngineWorker, reservoirs: Reservoirs | None) -> None:
        self.store = store
        self.worker = worker
        self.reservoirs = reservoirs
        self.last_id = f"{int((time.time() - START_LOOKBACK) * 1000)}-0"

    async def poll(self) -> int:
        """Run the new commands; how many changed the engine (then the summary should go out now)."""
        changed = 0
        for entry_id, raw in await self.store.read_commands(self.last_id):
            self.last_id = entry_id
            try:
                command = json.loads(raw)
            except ValueError:
                continue
            if isinstance(command, dict) and command.get("command") == "adopt":
                feature = command.get("feature") if isinstance(command.get("feature"), str) else None
                adopted = await self.worker.call(self._adopt(feature), changes=True)
                log.info(
                    "adopted the current regime of %d stream(s) (command %s)", len(adopted), command.get("id")
                )
                changed += bool(adopted)
        return changed

    def _adopt(self, feature: str | None) -> Callable[[Engine], list[Any]]:
        def run(engine: Engine) -> list[Any]:
            adopted = engine.adopt(feature)
            if self.reservoirs is not None:
                for f, k in adopted:
                    self.reservoirs.adopted(f, k)
            return adopted

        return run
