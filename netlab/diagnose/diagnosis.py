"""The four diagnoses (--bind, --connect, --port, overview), built from probes as findings."""

from __future__ import annotations

from netlab.diagnose.bindcheck import diagnose_bind, diagnose_port
from netlab.diagnose.checks import System
from netlab.diagnose.connectcheck import diagnose_connect
from netlab.diagnose.overview import overview

__all__ = ["System", "diagnose_bind", "diagnose_connect", "diagnose_port", "overview"]
