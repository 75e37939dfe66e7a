"""Makes this interpreter behave as if torch and torchvision were not installed.

Put this folder first on PYTHONPATH: Python imports ``sitecustomize`` at start-up, and the
finder below answers every ``import torch...`` / ``import torchvision...`` the way a missing
package does (ModuleNotFoundError naming the package), however deep the import.
"""

import sys
from importlib.abc import MetaPathFinder

BLOCKED = ("torch", "torchvision")


class _NoTorch(MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".", 1)[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


sys.meta_path.insert(0, _NoTorch())
