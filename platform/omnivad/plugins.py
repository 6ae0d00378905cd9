"""The built-in plug-ins: importing this module registers every built-in method (with its trunks, WS models
and config section) and the config sections of the job packages. :mod:`omnivad.config` imports it before it
builds ``Config``; nothing in ``methods/`` imports it back (the registries import no plug-in)."""

from __future__ import annotations

import omnivad.methods.mdvad  # noqa: F401,I001  (first: its section follows model in the config)
import omnivad.methods.bn_wvad  # noqa: F401
import omnivad.methods.como  # noqa: F401
import omnivad.methods.mmil  # noqa: F401
import omnivad.methods.mlp_mil  # noqa: F401
import omnivad.tune.config  # noqa: F401
import omnivad.uvad.config  # noqa: F401
import omnivad.video.config  # noqa: F401
import omnivad.zxvad.config  # noqa: F401
import omnivad.tracking  # noqa: F401
import omnivad.paper.config  # noqa: F401
