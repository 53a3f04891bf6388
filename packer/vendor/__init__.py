"""`layerpack vendor`: make a layer self-sufficient in a way Lambda's search order cannot undo.

Copying a missing library into `lib/` is the easy part. What goes wrong in practice (reported again
and again by users of other packagers): the copy loses to `/lib64` because `/lib64` precedes
`/opt/lib` on LD_LIBRARY_PATH; RUNPATH is not inherited so transitive dependencies are not found;
the copied library itself needs a newer glibc; `strip` after patchelf corrupts files (auditwheel
#716); symlinked sonames get flattened. So:

* the plan (pure, `--dry-run`) is computed from the analysis: the transitive closure of libraries
  Lambda lacks, the runtime libraries that are too old for the program (their host copy is vendored
  under a content-hash name, as auditwheel does, so no `/lib64` copy can shadow it), libraries the
  tree already has but cannot reach (fixed with an RPATH, not copied again);
* DT_RPATH (not RUNPATH: inherited, and searched before LD_LIBRARY_PATH) relative to `$ORIGIN` on
  every object that needs a vendored library;
* the glibc family is never copied unless `--bundle-libc`, which also writes a `bootstrap` wrapper
  that starts the program through the bundled loader (the aws-lambda-cpp packager's approach);
* files carrying a payload (SBCL cores, `raco exe`) are never stripped or patched;
* the output is analysed again, and must come out clean.
"""

from packer.vendor.apply import apply
from packer.vendor.model import (GLIBC_FAMILY, THIRD_PARTY, Copy, Move, PatchOp, VendorPlan, VendorResult, Wrapper,
                                 hashed_name)
from packer.vendor.plan import plan

__all__ = ["GLIBC_FAMILY", "THIRD_PARTY", "Copy", "Move", "PatchOp", "VendorPlan", "VendorResult", "Wrapper",
           "apply", "hashed_name", "plan"]
