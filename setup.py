"""The build's one addition to setup.cfg: the top-level templates/ and static/ folders
(where the project keeps them) go into the package, so that a wheel is a whole portal."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BESIDE_THE_PACKAGE = ("templates", "static")


class BuildPyWithPages(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # an editable install reads them where they are
            return
        for folder in BESIDE_THE_PACKAGE:
            self.copy_tree(folder, str(Path(self.build_lib) / "portal" / folder))


setup(cmdclass={"build_py": BuildPyWithPages})
