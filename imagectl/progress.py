"""Turn Docker's build/push/pull event stream into what a person reads.

On a terminal: build output as it comes and one live line of layer progress for push/pull.
Elsewhere (a Bamboo log): plain lines only — each layer's status change once, never a progress bar.
Everything goes to stderr so ``--output json`` on stdout stays machine-readable.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

_NOISE = ("Removing intermediate container", "---> Running in", "---> Using cache")


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


class Progress:
    def __init__(self, stream: TextIO | None = None, tty: bool | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.quiet = quiet
        self._layers: dict[str, dict[str, Any]] = {}
        self._live = False

    def say(self, line: str) -> None:
        if self.quiet:
            return
        self._end_live()
        print(line, file=self.stream, flush=True)

    def start(self, label: str) -> None:
        self._layers = {}
        self.say(label)

    def event(self, event: dict[str, Any]) -> None:
        if self.quiet:
            return
        if "stream" in event:
            for text in event["stream"].splitlines():
                text = text.strip()
                # Docker's bookkeeping lines say nothing to a reader of a build log.
                if text and not text.startswith(_NOISE):
                    self.say("  " + text)
            return
        layer = event.get("id")
        status = event.get("status")
        if not status:
            return
        if not layer or layer in ("latest",) or ":" in str(layer):
            self.say(f"  {status}")
            return
        entry = self._layers.setdefault(layer, {"status": "", "current": 0, "total": 0})
        detail = event.get("progressDetail") or {}
        changed = status != entry["status"]
        entry.update(status=status, current=detail.get("current", entry["current"]), total=detail.get("total", entry["total"]))
        if self.tty:
            self._draw()
        elif changed and status not in ("Pushing", "Downloading", "Extracting", "Waiting", "Preparing"):
            self.say(f"  {layer}: {status}")

    def _draw(self) -> None:
        done = sum(
            1
            for e in self._layers.values()
            if e["status"] in ("Pushed", "Layer already exists", "Pull complete", "Already exists", "Mounted from")
        )
        current = sum(e["current"] for e in self._layers.values())
        total = sum(e["total"] for e in self._layers.values())
        line = f"  layers {done}/{len(self._layers)}"
        if total:
            line += f"  {_mb(current)} / {_mb(total)}"
        self.stream.write("\r\033[K" + line)
        self.stream.flush()
        self._live = True

    def _end_live(self) -> None:
        if self._live:
            self.stream.write("\n")
            self._live = False
