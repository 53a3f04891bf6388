"""Lambda base images without Docker: references, an OCI registry client, a content-addressed
cache, and layer application. `pull` fills the cache; `cached` reads it without the network;
`rootfs` imports an unpacked root or a `docker export` tar for air-gapped users."""

from packer.images.pull import PullProgress, cached, pull, rootfs
from packer.images.store import CachedImage, Store

__all__ = ["CachedImage", "PullProgress", "Store", "cached", "pull", "rootfs"]
