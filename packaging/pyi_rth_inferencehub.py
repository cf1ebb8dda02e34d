"""PyInstaller runtime hook: runs in the binary before inferencehub/__main__.py, never from source.

`up` in a one-file binary leaves the launcher's process group, so that a terminal's Ctrl+C
reaches it once (through the launcher) instead of twice; see runtime.follow_onefile_launcher.
"""

import sys

from inferencehub.runtime import follow_onefile_launcher

follow_onefile_launcher(sys.argv)
