"""Pulling an image into the cache, and finding one there without the network.

`pull` resolves the reference to the platform manifest for the target arch (through an OCI index or
a Docker manifest list), downloads the config and each layer blob not already cached (each checked
against its digest), and unpacks the layers in order into a new root under the store's lock.
`cached` answers from the cache alone: it is what `invoke` calls by default, so nothing is ever
downloaded unless the user asked for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from packer.digest import file_sha256
from packer.errors import ImageError
from packer.images import layers as layers_mod
from packer.images.reference import Reference, parse
from packer.images.registry import INDEX_TYPES, RegistryClient
from packer.images.store import CachedImage, Store

# Lambda architecture name -> OCI platform architecture
OCI_ARCH = {"x86_64": "amd64", "arm64": "arm64"}
LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
)


@dataclass(frozen=True)
class Layer:
    digest: str
    size: int
    media_type: str


class PullProgress:
    """What a pull reports; the CLI draws a bar from it, the core stays silent by default."""

    def begin(self, total_bytes: int, files: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def stage(self, text: str) -> None: ...
    def end(self) -> None: ...


def cached(ref_text: str, arch: str, store: Store | None = None) -> CachedImage | None:
    """The image `ref_text` for `arch` if it is in the cache; never touches the network."""
    return (store or Store()).lookup(str(parse(ref_text)), arch)


def _select(client: RegistryClient, ref: Reference, arch: str) -> tuple[dict, str]:
    """(manifest, digest) of the image for `arch`, through an index or manifest list if there is one."""
    body, media, digest = client.manifest(ref.repository, ref.reference)
    doc = _json(body, f"manifest of {ref}")
    if media in INDEX_TYPES or "manifests" in doc:
        want = OCI_ARCH[arch]
        choices = [m for m in doc.get("manifests", [])
                   if (m.get("platform") or {}).get("os") == "linux"
                   and (m.get("platform") or {}).get("architecture") == want]
        if not choices:
            have = sorted({f"{(m.get('platform') or {}).get('os')}/{(m.get('platform') or {}).get('architecture')}"
                           for m in doc.get("manifests", [])})
            raise ImageError(f"{ref} has no linux/{want} image (it has: {', '.join(have) or 'none'})",
                             hint="pick the --arch the image exists for")
        body, media, digest = client.manifest(ref.repository, choices[0]["digest"])
        doc = _json(body, f"manifest {choices[0]['digest']}")
    if "layers" not in doc or "config" not in doc:
        raise ImageError(f"{ref}: not an image manifest (media type {media or 'unknown'})")
    return doc, digest


def _json(body: bytes, what: str) -> dict:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImageError(f"{what}: not JSON") from exc
    if not isinstance(doc, dict):
        raise ImageError(f"{what}: not a JSON object")
    return doc


def _layers(doc: dict, ref: Reference) -> list[Layer]:
    out = []
    for item in doc.get("layers", []):
        media = item.get("mediaType", "")
        if media not in LAYER_TYPES:
            raise ImageError(f"{ref}: layer {item.get('digest')} has media type {media!r}, which layerpack "
                             "cannot apply (tar, tar+gzip, tar+zstd only)")
        out.append(Layer(item["digest"], int(item.get("size", 0)), media))
    return out


def _config_env(config: dict) -> dict[str, str]:
    env = {}
    for item in (config.get("config") or {}).get("Env") or []:
        key, sep, value = str(item).partition("=")
        if sep:
            env[key] = value
    return env


def pull(ref_text: str, arch: str, store: Store | None = None,
         progress: PullProgress | None = None) -> CachedImage:
    """Pull `ref_text` for `arch` into the cache (a no-op download when its root is already there)."""
    store = store or Store()
    progress = progress or PullProgress()
    ref = parse(ref_text)
    client = RegistryClient(ref.registry)
    progress.stage(f"resolving {ref}")
    doc, digest = _select(client, ref, arch)
    layers = _layers(doc, ref)
    done = store.image(digest)
    if done is None:
        config_digest = doc["config"]["digest"]
        todo = [(config_digest, int(doc["config"].get("size", 0)))]
        todo += [(la.digest, la.size) for la in layers]
        missing = [(d, s) for d, s in todo if not store.has_blob(d)]
        progress.begin(sum(s for _, s in missing), len(missing))
        for d, _ in missing:
            client.blob(ref.repository, d, store.blob_path(d), progress.advance)
        progress.end()
        config = _json(store.blob_path(config_digest).read_bytes(), f"config {config_digest}")
        got_arch = config.get("architecture")
        if got_arch and got_arch != OCI_ARCH[arch]:
            raise ImageError(f"{ref} is a linux/{got_arch} image; the target is {arch}",
                             hint="pick the --arch the image exists for")
        meta = {"arch": arch, "config": config_digest, "env": _config_env(config),
                "layers": [la.digest for la in layers], "source": str(ref)}
        progress.stage(f"unpacking {len(layers)} layers")
        done = store.build_root(digest, meta, lambda root: unpack(store, layers, root))
    store.remember(str(ref), arch, digest)
    return store.image(digest) or done


def unpack(store: Store, layers: list[Layer], root: Path) -> None:
    builder = layers_mod.RootBuilder(root)
    for la in layers:
        layers_mod.apply_layer(builder, store.blob_path(la.digest), la.digest, la.media_type)
    builder.finish()



def rootfs(path: Path, arch: str, store: Store | None = None) -> CachedImage:
    """`--rootfs DIR|TAR`: a directory is used as it is (read-only, never modified); a tar (`docker
    export`, plain or gzip) is unpacked once into the cache, keyed by the sha256 of its bytes."""
    if path.is_dir():
        if not (path / "usr").is_dir() and not (path / "bin").exists():
            raise ImageError(f"--rootfs {path}: does not look like a root file system (no usr/ or bin/)")
        return CachedImage(digest="", root=path.resolve(), arch=arch)
    if not path.is_file():
        raise ImageError(f"--rootfs {path}: no such directory or tar file")
    store = store or Store()
    digest = "sha256:" + file_sha256(path).hexdigest()

    def fill(root: Path) -> None:
        builder = layers_mod.RootBuilder(root)
        layers_mod.apply_layer(builder, path, digest)
        builder.finish()

    img = store.image(digest) or store.build_root(digest, {"arch": arch, "layers": [], "source": str(path)}, fill)
    return img
