"""`layerpack slim`: rule-driven size reduction for interpreter distributions.

profiles (rules as data) -> plan (pure: what goes, what is stripped, bytes per rule) -> apply (on a
copy). BEAM stripping (`beam`), the OTP application graph (`otp`) and guarded ELF stripping
(`elfstrip`) are the pieces globs cannot express.
"""

from packer.slim.apply import ApplyResult, apply
from packer.slim.plan import SlimOptions, SlimPlan, plan
from packer.slim.profiles import Profile, load, profile_names

__all__ = ["ApplyResult", "Profile", "SlimOptions", "SlimPlan", "apply", "load", "plan", "profile_names"]
