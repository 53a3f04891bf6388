"""Lambda base images without Docker: references (`reference`), an OCI registry client (`registry`),
a content-addressed cache (`store`), layer application (`layers`) and pulling (`pull`: `pull`,
`cached`, `rootfs`). Nothing is imported here, so `invoke` pays for `requests` only when it pulls."""
