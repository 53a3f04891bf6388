"""Publishing a layer zip to AWS Lambda, once.

The flow mirrors every mutating step of layerpack: pure parts first (`archive` reads the zip,
`validate` refuses locally what AWS would reject, `plan` decides per region whether to publish and
how), then `apply` carries the plan out with boto3. Test endpoints (moto, LocalStack) accept almost
anything, so nothing here relies on the service to say no.
"""

from packer.publish.archive import Archive, inspect_archive
from packer.publish.plan import LayerRequest, RegionPlan, RemoteVersion, plan_region
from packer.publish.validate import limits, validate

__all__ = [
    "Archive",
    "LayerRequest",
    "RegionPlan",
    "RemoteVersion",
    "inspect_archive",
    "limits",
    "plan_region",
    "validate",
]
