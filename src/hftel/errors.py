"""The exceptions hftel raises. Each message names the problem and, where there is one, the file."""


class HftelError(Exception):
    """Base class of every hftel error."""


class SegmentError(HftelError):
    """A segment file is truncated, forged or garbage; nothing of it is trusted."""


class LayoutVersionError(SegmentError):
    """A segment was written with a layout version this hftel does not read (or not yet published)."""


class RegistrationError(HftelError, ValueError):
    """A metric cannot be registered: a bad name, label or bucket, or a conflicting earlier one."""


class SegmentFullError(HftelError):
    """The segment has no descriptor or value space left; create it with a larger capacity."""


class RegistrationBusyError(HftelError):
    """Another live process held the registration lock for longer than the timeout."""


class RingError(HftelError):
    """A ring's positions or records make no sense (a forged or damaged segment), or it is missing."""


class SpillError(HftelError):
    """A spill file that is not one, or from a newer version."""
