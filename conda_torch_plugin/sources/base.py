"""What a PyTorch source is: the protocol every source module implements, and the
flavour of a build (CUDA X.Y, CPU or MPS) that sources recognise in build strings.

A source is where PyTorch comes from: a set of channels with its own way of
naming variants (specs), of marking a build's flavour (build strings and marker
packages), of telling a broken environment (the doctor's markers) and its own
recipe file in ``recipes/``. Each source is one module in this package; the
registry in ``sources/__init__.py`` lists them in the order ``--source auto``
tries them.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from conda_torch_plugin.doctor._prefix import InstalledRecord
    from conda_torch_plugin.findings import Finding
    from conda_torch_plugin.recipes import Recipes

FlavourCompute = Literal["cuda", "cpu", "mps", "unknown"]
# The fix every "variant not pinned" refusal offers.
WRITE_HINT = "`conda torch-env write` writes an environment.yml with the variant pinned"

_DEP_VERSION = re.compile(r"(\d+)\.(\d+)")


@dataclass(frozen=True)
class Flavour:
    """The compute flavour of a torch build.

    ``cuda`` is the CUDA version the build was compiled for ("12.4"); ``runtime_cuda``,
    filled by ``lock_flavour`` only, is the CUDA toolkit version the environment's
    runtime libraries pin (``pytorch-cuda`` / ``cuda-version``), which the driver
    must also support and which can be newer than the build's on conda-forge.
    ``channel_style`` is the name of the source whose spelling the build uses, or
    "unknown".
    """

    compute: FlavourCompute
    cuda: str | None
    channel_style: str
    runtime_cuda: str | None = None

    @property
    def label(self) -> str:
        if self.compute == "cuda":
            return f"CUDA {self.cuda}" if self.cuda else "CUDA"
        return {"cpu": "CPU", "mps": "CPU/MPS"}.get(self.compute, "unknown")

    @property
    def required_cuda(self) -> str | None:
        """The highest CUDA version the driver must support for this environment."""
        versions = [v for v in (self.cuda, self.runtime_cuda) if v]
        if self.compute != "cuda" or not versions:
            return None
        return max(versions, key=version_key)

    def to_dict(self) -> dict[str, object]:
        return {
            "compute": self.compute,
            "cuda": self.cuda,
            "channel_style": self.channel_style,
            "runtime_cuda": self.runtime_cuda,
            "label": self.label,
        }


UNKNOWN = Flavour("unknown", None, "unknown")


def major_minor(version: str) -> str | None:
    """'12.4.127' -> '12.4'; '3.12.7' -> '3.12'; None without a leading X.Y."""
    m = _DEP_VERSION.match(version)
    return f"{int(m[1])}.{int(m[2])}" if m else None


def version_key(version: str) -> tuple[int, ...]:
    """'12.10' -> (12, 10): every run of digits, so versions compare numerically."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def digits_to_version(digits: str) -> str:
    """ "124" -> "12.4", "92" -> "9.2", "130" -> "13.0": the last digit is the minor."""
    return f"{int(digits[:-1])}.{digits[-1]}"


def dep_version(dep: str) -> str | None:
    """The X.Y in a dependency string's version part: "pytorch-cuda 12.4.*" -> "12.4"."""
    spec = dep.split(maxsplit=1)[1] if len(dep.split()) > 1 else ""
    m = _DEP_VERSION.search(spec)
    return f"{int(m[1])}.{int(m[2])}" if m else None


@dataclass(frozen=True)
class RequestedSpec:
    """One dependency line of an environment, as the variant checks read it."""

    text: str  # as written
    name: str  # normalised
    version: str | None
    build: str | None
    channel: str | None  # "pytorch" of "pytorch::pytorch=2.5.1"


class PyTorchSource(ABC):
    """One place PyTorch comes from. Subclasses fill the class variables and methods."""

    name: ClassVar[str]  # the --source value and the recipes' "channel" key: "pytorch"
    recipe_file: ClassVar[str]  # its file in recipes/: "pytorch-channel.json"
    adjective: ClassVar[str]  # "no pytorch-channel release"
    where: ClassVar[str]  # "pytorch 2.5.1 from the pytorch channel"
    subject: ClassVar[str]  # "the pytorch channel has no ..."
    channel_names: ClassVar[tuple[str, ...]]  # channels it brings (for environment.yml edits)
    # Where its users go when a GPU is newer than anything it will ever publish
    # (a source that stopped publishing); None while it still publishes.
    successor: ClassVar[str | None] = None
    # Whether the plan reads its channel's repodata for candidates (a source that still
    # publishes); a frozen channel is planned from its recipes alone.
    reads_repodata: ClassVar[bool] = True

    # -- the plan -------------------------------------------------------------

    @abstractmethod
    def channels(self, base_channel: str) -> tuple[str, ...]:
        """The environment's channels, in priority order."""

    @abstractmethod
    def channels_reason(self, base_channel: str) -> str:
        """Why those channels, for the plan's explanation."""

    @abstractmethod
    def auto_reason(self, newest: str, what: str) -> str:
        """Why ``--source auto`` took this source when it is the first that fits.

        ``newest`` is the newest release the recipes know here, ``what`` names the
        chosen build ("conda-forge pytorch 2.9.1 with CUDA 12.9").
        """

    @abstractmethod
    def no_release_message(self, versions: Sequence[str], spec: str) -> str:
        """No release matches ``--pytorch spec``; ``versions`` newest first."""

    @abstractmethod
    def torch_specs(
        self, version: str, platform: str, compute: str, cuda: str | None
    ) -> tuple[list[str], list[str]]:
        """The dependency lines that select the variant: (before torchvision, after torchaudio)."""

    def glibc(self, cuda: str | None, recipes: Recipes) -> str:
        """The ``__glibc`` a linux lock of this variant (None: CPU) must assume: the
        ``platform_floors`` of this source's recipe file."""
        return recipes.platform_floors(self.name).glibc(cuda)

    def osx(self, platform: str, pytorch: str, recipes: Recipes) -> str | None:
        """The ``__osx`` a lock of PyTorch ``pytorch`` for ``platform`` must assume (None off
        macOS): the oldest macOS this source's builds of that release support, from its
        recipe file."""
        return recipes.platform_floors(self.name).osx(platform, pytorch)

    @abstractmethod
    def check_variant_pinned(
        self,
        specs: Mapping[str, RequestedSpec],
        platform: str,
        virtual_packages: Mapping[str, str],
        *,
        source: str,
    ) -> None:
        """LockError when ``specs`` (by name) leave the torch build's CUDA variant to the solver
        (which then picks by the order of records in repodata.json)."""

    # -- build strings and markers ---------------------------------------------

    @abstractmethod
    def marker_flavour(self, name: str, version: str, build: str) -> Flavour | None:
        """The flavour a marker package states (pytorch-mutex, cuda-version, ...); None if
        ``name`` is not one of this source's markers."""

    @abstractmethod
    def build_flavour(self, build: str) -> Flavour | None:
        """The flavour this source's spelling of a build string states, or None."""

    @abstractmethod
    def depends_flavour(self, depends: Mapping[str, str]) -> Flavour | None:
        """The flavour the markers a build depends on state (name -> dependency), or None."""

    # -- the doctor ------------------------------------------------------------

    @abstractmethod
    def doctor_markers(
        self,
        torch: InstalledRecord,
        flavour: Flavour,
        records: Mapping[str, InstalledRecord],
        prefix: Path,
    ) -> list[Finding]:
        """Do the packages that pin this source's flavour agree with the pytorch build?"""

    @abstractmethod
    def companion_fix(self, name: str, version: str, flavour: Flavour, prefix: Path) -> str:
        """A conda command installing the torchvision/torchaudio build that matches."""
