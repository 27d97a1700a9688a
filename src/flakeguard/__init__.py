"""FlakeGuard: finds flaky tests in GitHub Actions CI."""

__version__ = "0.1.0"
