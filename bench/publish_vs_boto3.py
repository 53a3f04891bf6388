#!/usr/bin/env python3
"""`layerpack publish` of a ~60 MB layer zip through S3 against the same boto3 calls made directly,
both against moto in server mode on 127.0.0.1, in the same run.

    python bench/publish_vs_boto3.py [--repeat 3] [--zip LAYER.zip]

  boto3 direct   a fresh Python process: import boto3, upload_file (the same TransferConfig),
                 head_object, publish_layer_version from S3, delete_object
  layerpack      `layerpack publish ZIP --s3-bucket B --force` in a fresh process
Both pay Python's start-up and boto3's import. What layerpack adds is printed as the difference and
explained by the steps it runs that the direct script does not: SHA-256 of the zip (the
idempotency check), one pass inflating every member (CRC check, ELF architectures), the layer's
latest version (ListLayerVersions) and the CodeSha256 comparison after publishing.
Without --zip, a layer of real shared libraries (about 60 MB zipped) is built under a private
directory once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.moto_support import FAKE_SECRET, MotoServer  # noqa: E402

DIRECT = r"""
import sys
import boto3
from boto3.s3.transfer import TransferConfig
url, zip_path = sys.argv[1], sys.argv[2]
kw = dict(region_name="us-east-1", endpoint_url=url)
s3, lam = boto3.client("s3", **kw), boto3.client("lambda", **kw)
cfg = TransferConfig(multipart_threshold=16 << 20, multipart_chunksize=16 << 20, max_concurrency=4)
s3.upload_file(zip_path, "bench", "direct.zip", Config=cfg)
version = s3.head_object(Bucket="bench", Key="direct.zip").get("VersionId")
lam.publish_layer_version(LayerName="direct", Content={"S3Bucket": "bench", "S3Key": "direct.zip"},
                          CompatibleRuntimes=["provided.al2023"], CompatibleArchitectures=["x86_64"])
s3.delete_object(Bucket="bench", Key="direct.zip")
"""


def layer_zip() -> Path:
    """About 60 MB zipped of real x86_64 shared libraries, built once in a private directory."""
    base = Path(tempfile.gettempdir()) / f"layerpack-bench-{os.getuid()}" / "publish"
    out = base / "layer.zip"
    if out.is_file() and out.stat().st_size >= 55 << 20:
        return out
    shutil.rmtree(base, ignore_errors=True)
    lib = base / "tree" / "lib"
    lib.mkdir(parents=True)
    size = 0
    for p in sorted(Path("/usr/lib/x86_64-linux-gnu").glob("*.so*")):
        if size >= 150 << 20:
            break
        if p.is_file() and not p.is_symlink():
            shutil.copy2(p, lib / p.name)
            size += p.stat().st_size
    subprocess.run(["layerpack", "build", str(base / "tree"), "-o", str(out)], check=True, stdout=subprocess.DEVNULL)
    return out


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zip", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    z = args.zip or layer_zip()
    server = MotoServer().start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY=FAKE_SECRET, AWS_DEFAULT_REGION="us-east-1",
                   AWS_ENDPOINT_URL=server.url, AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                   AWS_EC2_METADATA_DISABLED="true")
        import boto3

        boto3.client("s3", region_name="us-east-1", endpoint_url=server.url, aws_access_key_id="testing",
                     aws_secret_access_key=FAKE_SECRET).create_bucket(Bucket="bench")
        direct = min(timed([sys.executable, "-c", DIRECT, server.url, str(z)], env) for _ in range(args.repeat))
        lp = min(timed(["layerpack", "publish", str(z), "--name", "lp", "--s3-bucket", "bench", "--force"], env)
                 for _ in range(args.repeat))
        from packer.publish.archive import inspect_archive

        c0, t0 = time.process_time(), time.perf_counter()
        inspect_archive(z)
        local_cpu, local_wall = time.process_time() - c0, time.perf_counter() - t0
    finally:
        server.stop()
    print(f"zip {z}: {z.stat().st_size / 1e6:.1f} MB; load average {os.getloadavg()[0]:.1f}")
    print(f"boto3 direct      {direct:6.2f} s")
    print(f"layerpack publish {lp:6.2f} s  ({lp / direct:.2f}x; +{lp - direct:.2f} s)")
    print(f"of which reading the zip (sha256, one inflate pass for CRCs and ELF architectures): "
          f"{local_wall:.2f} s wall, {local_cpu:.2f} s CPU")


if __name__ == "__main__":
    main()
