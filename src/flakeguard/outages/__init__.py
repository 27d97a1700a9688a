"""Dependency outages: telling them apart from job errors, and watching them end.

A job that fails because PostgreSQL, Redis or GitHub cannot be reached has done nothing wrong: the
worker hands it back without spending an attempt, stops taking jobs, reports not-ready and resumes
once the dependency answers again (see docs/RELIABILITY.md, "Dependency outages").
"""

from flakeguard.outages.classify import Dependency, outage_dependency
from flakeguard.outages.monitor import OutageMonitor

__all__ = ["Dependency", "OutageMonitor", "outage_dependency"]
