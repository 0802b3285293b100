"""Platforms: parse, normalise and match ``os/arch/variant`` the way containerd does.

A :class:`Platform` is the OCI ``platform`` object. :meth:`Platform.parse` reads the specifier
syntax of containerd's ``platforms.Parse`` (``linux/arm64``, ``arm64``, ``windows(10.0.17763)``)
and, unless told otherwise, returns the *normalised* form (``x86_64`` → ``amd64``, ``linux/arm``
→ ``linux/arm/v7``, ``arm64/v8`` → ``arm64``). Matching follows containerd's ``Only`` and
``OnlyStrict``: a wanted platform also runs a vector of older compatible ones (``arm64`` runs
``arm/v8``…``arm/v5``, ``amd64`` runs ``386``) and :class:`Matcher` ranks candidates by that
vector, so an index entry for the exact platform is preferred over a merely compatible one.
The host is read once from ``uname`` and ``/proc/cpuinfo``; every function that falls back on
the host takes an explicit ``host`` so tests (and cross-pulls) can inject one.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote

from lorry.errors import InvalidInputError

__all__ = [
    "Matcher",
    "Platform",
    "best_match",
    "host_platform",
    "matches",
    "normalize_arch",
    "ranked",
]

_SPECIFIER = re.compile(r"[A-Za-z0-9_.-]+")
_OS_PART = re.compile(r"([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?")
# Go's syslist, as containerd's database.go has it.
_GO_OS = (
    "aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd openbsd plan9 "
    "solaris windows zos"
)
_GO_ARCH = (
    "386 amd64 amd64p32 arm armbe arm64 arm64be ppc64 ppc64le loong64 mips mipsle mips64 "
    "mips64le mips64p32 mips64p32le ppc riscv riscv64 s390 s390x sparc sparc64 wasm"
)
_KNOWN_OS = frozenset(_GO_OS.split())
_KNOWN_ARCH = frozenset(_GO_ARCH.split())
#: lorry's additions to containerd's table: the other x86-32 spellings uname reports.
_X86_32 = frozenset({"i386", "i486", "i586", "i686", "x86"})


def normalize_arch(arch: str, variant: str = "") -> tuple[str, str]:
    """Canonical ``(architecture, variant)``; containerd's table plus ``i486``…``i686``."""
    arch, variant = arch.lower(), variant.lower()
    if arch in _X86_32:
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        if variant in ("9", "9.0", "v9.0"):
            return "arm64", "v9"
        return "arm64", "" if variant in ("8", "v8", "v8.0") else variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            return "arm", "v7"
        if variant in ("5", "6", "8"):
            return "arm", "v" + variant
    return arch, variant


def _normalize_os(name: str) -> str:
    name = name.lower()
    return "darwin" if name == "macos" else name


def _encode_option(value: str) -> str:
    for char, code in (("%", "%25"), ("+", "%2B"), ("(", "%28"), (")", "%29"), ("/", "%2F")):
        value = value.replace(char, code)
    return value


def _decode_option(value: str, spec: str) -> str:
    if "%" in value and re.search(r"%(?![0-9A-Fa-f]{2})", value):
        raise InvalidInputError(f"invalid platform {spec!r}: bad %-escape in {value!r}")
    return unquote(value)


@dataclass(frozen=True, slots=True)
class Platform:
    """An OCI platform: OS, architecture and the optional variant, OS version and features."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Empty strings from JSON or Go-style callers mean "absent".
        if self.variant == "":
            object.__setattr__(self, "variant", None)
        if self.os_version == "":
            object.__setattr__(self, "os_version", None)

    @classmethod
    def parse(cls, text: str, *, host: Platform | None = None, normalize: bool = True) -> Platform:
        """Parse a specifier ``<os>[(<version>[+<feature>]*)]|<arch>|<os>/<arch>[/<variant>]``.

        A bare OS takes the architecture from ``host`` (default: this machine), a bare
        architecture takes the OS from it, as containerd's ``Parse`` does. With
        ``normalize=False`` the result equals containerd's ``Parse`` exactly (``linux/arm``
        keeps an empty variant, ``linux/arm64/v8`` keeps ``v8``).
        """
        if "*" in text:
            raise InvalidInputError(f"invalid platform {text!r}: wildcards are not supported")
        parts = text.split("/", 3)
        head = _OS_PART.fullmatch(parts[0])
        if head is None:
            raise InvalidInputError(f"invalid platform {text!r}: bad OS component {parts[0]!r}")
        for part in parts[1:]:
            if not _SPECIFIER.fullmatch(part):
                raise InvalidInputError(f"invalid platform {text!r}: bad component {part!r}")
        os_name = _normalize_os(head[1])
        os_version = _decode_option(head[2] or "", text)
        features = tuple(_decode_option(f, text) for f in (head[3] or "").split("+")[1:])
        if len(parts) == 1:
            os_name, arch, variant = _one_part(text, os_name, host or cls.host())
        elif len(parts) == 2:
            arch, variant = normalize_arch(parts[1])
            variant = "" if (arch, variant) == ("arm", "v7") else variant
        elif len(parts) == 3:
            arch, variant = normalize_arch(parts[1], parts[2])
            variant = "v8" if (arch, variant) == ("arm64", "") else variant
        else:
            raise InvalidInputError(f"invalid platform {text!r}: too many components")
        out = cls(os_name, arch, variant, os_version, features)
        return out.normalize() if normalize else out

    @classmethod
    def host(cls) -> Platform:
        """The platform of the running machine, with the amd64 level or the arm variant."""
        return _host_platform()

    def normalize(self) -> Platform:
        """The canonical form: lowercase OS, normalised arch/variant, sorted unique features."""
        arch, variant = normalize_arch(self.architecture, self.variant or "")
        features = tuple(sorted(set(self.os_features)))
        return replace(self, os=_normalize_os(self.os), architecture=arch, variant=variant,
                       os_features=features)  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], what: str = "platform") -> Platform:
        """Read an OCI/Docker ``platform`` JSON object; ``what`` names it in errors."""
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"{what}: not a JSON object")
        values: dict[str, Any] = {}
        for key in ("os", "architecture", "variant", "os.version"):
            value = data.get(key)
            if key in ("os", "architecture") and value is None:
                raise InvalidInputError(f"{what}: missing required field {key!r}")
            if value is not None and not isinstance(value, str):
                raise InvalidInputError(f"{what}: field {key!r} is not a string")
            values[key] = value
        features = data.get("os.features") or []
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise InvalidInputError(f"{what}: field 'os.features' is not a list of strings")
        return cls(values["os"], values["architecture"], values["variant"],
                   values["os.version"], tuple(features))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The OCI ``platform`` JSON object, fields in the image-spec's order."""
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        if self.variant:
            out["variant"] = self.variant
        return out

    def format_all(self) -> str:
        """Like ``str()`` but with the OS version and features: ``windows(10.0.17763)/amd64``."""
        options = _encode_option(self.os_version or "") + "".join(
            "+" + _encode_option(f) for f in sorted(self.os_features) if f
        )
        head = f"{self.os}({options})" if options else self.os
        return "/".join(p for p in (head, self.architecture, self.variant) if p)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p) or "unknown"


def _one_part(text: str, os_name: str, host: Platform) -> tuple[str, str, str]:
    """A one-part specifier: a known OS gets the host's arch, an arch gets the host's OS."""
    if os_name in _KNOWN_OS:
        variant = host.variant or ""
        keep = host.architecture == "arm" and variant not in ("", "v7")
        return os_name, host.architecture, variant if keep else ""
    arch, variant = normalize_arch(text)
    if arch not in _KNOWN_ARCH:
        raise InvalidInputError(
            f"invalid platform {text!r}: unknown operating system or architecture"
        )
    return host.os, arch, "" if (arch, variant) == ("arm", "v7") else variant


def _windows_build(version: str | None) -> tuple[int, int, int] | None:
    """``(major, minor, build)`` of a Windows ``os.version`` like ``10.0.17763.1234``."""
    fields = (version or "").split(".")
    if len(fields) < 3 or not all(f.isdigit() for f in fields[:3]):
        return None
    major, minor, build = (int(f) for f in fields[:3])
    return (major, minor, build) if major < 256 and minor < 256 and build < 65536 else None


def _windows_compatible(host: tuple[int, int, int], ctr: tuple[int, int, int] | None) -> bool:
    """Whether a Windows host runs a container image built for ``ctr`` (containerd's rule)."""
    if ctr is None or host[:2] != ctr[:2]:
        return False
    ws2022 = 20348  # from WS 2022 on, hosts run any stable-ABI image of 2022 or later
    if host[2] < ws2022:
        return host[2] == ctr[2]
    return ws2022 <= ctr[2] <= host[2]


def _exact(want: Platform, candidate: Platform) -> bool:
    """containerd's ``NewMatcher(want).Match``: equal after normalising, features a subset."""
    want, cand = want.normalize(), candidate.normalize()
    if (want.os, want.architecture, want.variant) != (cand.os, cand.architecture, cand.variant):
        return False
    if want.os == "windows":
        wanted_build = _windows_build(want.os_version)
        ctr_build = _windows_build(candidate.os_version)
        if (
            wanted_build
            and candidate.os_version
            and not _windows_compatible(wanted_build, ctr_build)
        ):
            return False
    return set(cand.os_features) <= set(want.os_features)


def _vector(p: Platform) -> list[Platform]:
    """The platforms ``p`` can run, best first (containerd's ``platformVector``)."""
    out = [p]
    level = _version_number(p.variant)
    if p.architecture == "amd64":
        out += [replace(p, variant=f"v{n}") for n in range((level or 1) - 1, 0, -1)]
        out.append(replace(p, architecture="386", variant=None))
    elif p.architecture == "arm" and level is not None and level > 5:
        out += [replace(p, variant=f"v{n}") for n in range(level - 1, 4, -1)]
    elif p.architecture == "arm64":
        out += _arm64_vector(p)
    return out


def _arm64_vector(p: Platform) -> list[Platform]:
    variant = p.variant or "v8"
    major_text, dot, minor_text = variant.partition(".")
    major = _version_number(major_text)
    out: list[Platform] = []
    if major is not None and major >= 8:
        minor = int(minor_text) if len(variant) == 4 and dot and minor_text.isdigit() else 0
        if major == 9:
            out += [replace(p, variant=f"v9.{m}" if m else "v9") for m in range(minor - 1, -1, -1)]
            minor, major = minor + 5, 8  # v9.x diverged from v8.(x+5)
            out.append(replace(p, variant=f"v8.{minor}"))
        out += [replace(p, variant=f"v{major}.{m}" if m else f"v{major}")
                for m in range(minor - 1, -1, -1)]  # fmt: skip
    if variant.startswith(("v8.", "v9.")):
        variant = "v8"
    return out + _vector(replace(p, architecture="arm", variant=variant))


def _version_number(variant: str | None) -> int | None:
    text = (variant or "").removeprefix("v")
    return int(text) if text.isdigit() else None


class Matcher:
    """An ordered list of acceptable platforms: matches any of them, ranks by position.

    This is containerd's ``Ordered`` comparer; :meth:`only` and :meth:`only_strict` build the
    ``Only`` and ``OnlyStrict`` matchers from one wanted platform.
    """

    def __init__(self, platforms: Sequence[Platform]) -> None:
        self.platforms = tuple(platforms)

    @classmethod
    def only(cls, wanted: Platform) -> Matcher:
        """Match ``wanted`` and every platform it can also run, best first."""
        return cls(_vector(wanted.normalize()))

    @classmethod
    def only_strict(cls, wanted: Platform) -> Matcher:
        """Match ``wanted`` alone (any spelling of it), not the older platforms it runs."""
        return cls([wanted.normalize()])

    def rank(self, candidate: Platform) -> int | None:
        """Position of the first acceptable platform ``candidate`` matches; ``None`` if none."""
        for i, p in enumerate(self.platforms):
            if _exact(p, candidate):
                return i
        return None

    def match(self, candidate: Platform) -> bool:
        """Whether ``candidate`` is acceptable."""
        return self.rank(candidate) is not None

    def less(self, a: Platform, b: Platform) -> bool:
        """Whether ``a`` is preferred to ``b`` (containerd's ``Less``)."""
        ra, rb = self.rank(a), self.rank(b)
        return ra is not None and (rb is None or ra < rb)


def _matcher(wanted: Platform, strict: bool) -> Matcher:
    return Matcher.only_strict(wanted) if strict else Matcher.only(wanted)


def matches(wanted: Platform, candidate: Platform, strict: bool = False) -> bool:
    """Whether a machine of platform ``wanted`` runs an image built for ``candidate``."""
    return _matcher(wanted, strict).match(candidate)


def ranked(
    wanted: Platform, candidates: Sequence[Platform | None], strict: bool = False
) -> list[int]:
    """Indexes of the acceptable candidates, best first; ``None`` (no platform) fits, last.

    Equal ranks keep their input order, as moby's stable sort of manifest-list entries does.
    """
    m = _matcher(wanted, strict)
    last = len(m.platforms)
    keyed = []
    for i, cand in enumerate(candidates):
        rank = last if cand is None else m.rank(cand)
        if rank is not None:
            keyed.append((rank, i))
    return [i for _, i in sorted(keyed)]


def best_match(
    wanted: Platform, candidates: Sequence[Platform | None], strict: bool = False
) -> int | None:
    """Index of the best candidate for ``wanted``, or ``None`` when none fits."""
    order = ranked(wanted, candidates, strict)
    return order[0] if order else None


@functools.cache
def _host_platform() -> Platform:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpuinfo = f.read()
    except OSError:
        cpuinfo = ""
    return host_platform(sys.platform, os.uname().machine, cpuinfo)


def host_platform(system: str, machine: str, cpuinfo: str = "") -> Platform:
    """The platform of a machine from ``sys.platform``, ``uname -m`` and /proc/cpuinfo text.

    As containerd does: the amd64 variant is the micro-architecture level the CPU flags reach;
    the arm variant is cpuinfo's ``CPU architecture``, or else the one ``uname -m`` names.
    """
    os_name = {"win32": "windows", "cygwin": "windows"}.get(system, system.rstrip("0123456789"))
    lowered = machine.lower()
    arch, variant = ("arm", "") if lowered.startswith("armv") else normalize_arch(machine)
    if arch == "amd64":
        variant = _amd64_level(_cpuinfo_field(cpuinfo, "flags"))
    elif arch in ("arm", "arm64"):
        found = _cpuinfo_field(cpuinfo, "cpu architecture") or _variant_from_machine(lowered)
        variant = _arm_variant(found) if found else ""
    return Platform(os_name, arch, variant).normalize()


def _cpuinfo_field(cpuinfo: str, key: str) -> str:
    """The first value of ``key`` (case-insensitive) in /proc/cpuinfo text, ``""`` if absent."""
    for line in cpuinfo.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == key:
            return value.strip()
    return ""


def _variant_from_machine(machine: str) -> str:
    """containerd's ``getCPUVariantFromArch``: ``aarch64`` → ``8``, ``armv7l`` → ``7``."""
    if machine == "aarch64":
        return "8"
    if machine.startswith("armv") and len(machine) >= 5:
        return machine[4] if machine[4] in "345678" else "unknown"
    return ""


_AMD64_LEVELS = (
    "cx16 lahf_lm popcnt pni sse4_1 sse4_2 ssse3",
    "avx avx2 bmi1 bmi2 f16c fma abm movbe xsave",
    "avx512f avx512bw avx512cd avx512dq avx512vl",
)


def _amd64_level(flags: str) -> str:
    """The x86-64 micro-architecture level (``v1``…``v4``) the CPU flags reach."""
    have, level = set(flags.split()), 1
    for needed in _AMD64_LEVELS:
        if not set(needed.split()) <= have:
            break
        level += 1
    return f"v{level}"


_ARM_VARIANTS = {
    "v8": ("8", "aarch64"),
    "v7": ("7", "7m", "?(12)", "?(13)", "?(14)", "?(15)", "?(16)", "?(17)"),
    "v6": ("6", "6tej"),
    "v5": ("5", "5t", "5te", "5tej"),
    "v4": ("4", "4t"),
    "v3": ("3",),
}


def _arm_variant(cpu_architecture: str) -> str:
    """The arm variant for a ``CPU architecture`` value (``8`` → ``v8``), else ``unknown``."""
    value = cpu_architecture.lower()
    for variant, spellings in _ARM_VARIANTS.items():
        if value in spellings:
            return variant
    return "unknown"
