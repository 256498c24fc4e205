"""Build hook (everything else is in pyproject.toml): the zoo's cards live at the top level, ``model_cards/``, the
one source of the zoo; the wheel carries a copy as ``wavehub/model_cards``, where ``wavehub.zoo`` finds them when
installed. (setuptools' package-data cannot reach outside the package folder.)"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithCards(build_py):
    def run(self) -> None:
        super().run()
        out = Path(self.build_lib) / "wavehub" / "model_cards"
        self.mkpath(str(out))
        for card in sorted((Path(__file__).resolve().parent / "model_cards").glob("*.md")):
            self.copy_file(str(card), str(out / card.name))


setup(cmdclass={"build_py": BuildPyWithCards})
