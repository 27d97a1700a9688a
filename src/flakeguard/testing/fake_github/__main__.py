"""`python -m flakeguard.testing.fake_github --port 8081 --runs 20 --tests-per-run 50`: serves the
demo repository `acme/project` and prints GITHUB_API_URL, GITHUB_APP_ID and GITHUB_PRIVATE_KEY."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from flakeguard.testing.fake_github.demo import populate_demo_repository
from flakeguard.testing.fake_github.fake import FakeGitHub


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m flakeguard.testing.fake_github",
        description="Serve a fake GitHub API with a generated repository acme/project.",
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--blob-port", type=int, default=0)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--tests-per-run", type=int, default=50)
    ap.add_argument("--app-id", type=int, default=424242)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--key-file", default=None, help="where to write the App private key PEM")
    args = ap.parse_args(argv)
    gh = FakeGitHub(host=args.host, port=args.port, blob_port=args.blob_port, app_id=args.app_id)
    key_file = args.key_file or os.path.join(
        tempfile.gettempdir(), f"flakeguard-fake-github-{args.app_id}.pem"
    )
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(gh.private_key_pem)
    gh.start()
    run_ids = populate_demo_repository(gh, runs=args.runs, tests_per_run=args.tests_per_run, seed=args.seed)
    print(
        f"fake GitHub serving acme/project (installation 67890) with {len(run_ids)} runs "
        f"({run_ids[0]}..{run_ids[-1]}) at {gh.url}",
        flush=True,
    )
    print(f"GITHUB_API_URL={gh.url}", flush=True)
    print(f"GITHUB_APP_ID={gh.app_id}", flush=True)
    print(f"GITHUB_PRIVATE_KEY={key_file}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        gh.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
